"""Head variants compared by ``benchmarks/classify_features.py`` (development benchmark for issue 6).

A head spec is a dict: ``source`` (training features: "true", "corrupted" (all cached variants),
"corrupted<k>" (the first k), "digitized", or several joined by "+"), ``model`` ("logistic", "mlp",
"ensemble", "product": the entry's own ``DxHead`` + ``fit_dx_head`` with the ``TrainConfig`` defaults), ``l2``,
``hidden``, ``pw_limit`` (clip of the negatives/positives BCE weight; 1e4: fully balanced), ``subsets``
(per-class feature lists), ``thresholds`` ("0.5"; "oof": tuned on 5-fold out-of-fold predictions of the
training records, made on the features ``oof_source``, for classes with at least ``min_pos`` OOF positives;
"prior": the OOF quantile matching the training prevalence), ``rate_rules`` (TACHY/BRADY from the measured
rate, > 100 / < 60 bpm), ``eval_source`` (test features: "digitized" unless told).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ecgfeatures.features import FEATURE_NAMES, features_to_model_input
from models.heads import tune_thresholds


def _source(data: dict[str, np.ndarray], name: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs (M, E) and the record index of each row for the records ``idx``."""
    raw, owners = _raw_source(data, name, idx)
    return features_to_model_input(raw), owners


def _raw_source(data: dict[str, np.ndarray], name: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw feature rows (M, E) (before ``features_to_model_input``) and their record index, as :func:`_source`."""
    parts, owners = [], []
    for part in name.split("+"):
        if part.startswith("corrupted"):
            k = int(part[9:] or data["corrupted"].shape[1])
            parts.append(data["corrupted"][idx, :k].reshape(-1, data["corrupted"].shape[-1]))
            owners.append(np.repeat(idx, k))
        else:
            parts.append(data[part][idx])
            owners.append(idx)
    return np.concatenate(parts), np.concatenate(owners)


def fit_predict(
    spec: dict[str, Any], x: np.ndarray, y: np.ndarray, x_eval: list[np.ndarray], seed: int = 0
) -> list[np.ndarray]:
    """Fit one model on ``x`` (M, E), ``y`` (M, C) bool; probabilities for every array of ``x_eval``."""
    if spec.get("subsets") and spec.get("classes"):
        outs = [np.zeros((len(e), y.shape[1])) for e in x_eval]
        rest = [j for j, c in enumerate(spec["classes"]) if c not in spec["subsets"]]
        sub = {k: v for k, v in spec.items() if k != "subsets"}
        if rest:
            res = fit_predict(sub, x, y[:, rest], x_eval, seed)
            for o, r in zip(outs, res):
                o[:, rest] = r
        for c, names in spec["subsets"].items():
            if c not in spec["classes"]:
                continue
            j = spec["classes"].index(c)
            cols = [FEATURE_NAMES.index(n) for n in names]
            res = fit_predict(sub, x[:, cols], y[:, [j]], [e[:, cols] for e in x_eval], seed)
            for o, r in zip(outs, res):
                o[:, j] = r[:, 0]
        return outs
    if spec.get("model") == "product":  # the entry's own head and fit, with TrainConfig defaults
        from ecgentry.config import TrainConfig
        from models.config import DxHeadConfig
        from models.heads import DxHead, balanced_pos_weight, fit_dx_head

        tc = TrainConfig()
        head = DxHead(
            DxHeadConfig(
                classes=[f"c{j}" for j in range(y.shape[1])],
                hidden_sizes=list(tc.dx_hidden_sizes),
                extra_features=x.shape[1],
                use_image=False,
                standardize=tc.dx_standardize,
            ),
            [1],
        )
        fit_dx_head(
            head,
            x,
            y.astype(np.float32),
            l2=tc.dx_l2,
            pos_weight=balanced_pos_weight(y, tc.dx_pos_weight_limit),
            seed=seed,
        )
        head.eval()
        with torch.no_grad():
            return [
                torch.sigmoid(head.logits_from_inputs(torch.from_numpy(e.astype(np.float32)))).numpy() for e in x_eval
            ]
    mu = x.mean(0)
    sd = x.std(0)
    sd[sd < 1e-6] = 1.0
    xt = torch.from_numpy((x - mu) / sd).float()
    yt = torch.from_numpy(y.astype(np.float32))
    pos = yt.sum(0)
    pw = torch.clamp((len(yt) - pos) / torch.clamp(pos, min=1), 1.0, spec.get("pw_limit", 10.0))
    if not spec.get("balanced", True):
        pw = torch.ones_like(pw)
    torch.manual_seed(seed)
    kind = spec.get("model", "logistic")
    if kind == "ensemble":
        outs = [fit_predict({**spec, **sub}, x, y, x_eval, seed) for sub in spec["members"]]
        return [np.mean([o[i] for o in outs], axis=0) for i in range(len(x_eval))]
    hidden = spec.get("hidden", []) if kind == "mlp" else []
    layers: list[torch.nn.Module] = []
    width = x.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.GELU(), torch.nn.Dropout(spec.get("dropout", 0.0))]
        width = h
    layers.append(torch.nn.Linear(width, y.shape[1]))
    net = torch.nn.Sequential(*layers)
    l2 = float(spec.get("l2", 1e-2))
    lossf = torch.nn.BCEWithLogitsLoss(pos_weight=pw)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]

    def objective() -> torch.Tensor:
        return lossf(net(xt), yt) + l2 * sum((w**2).sum() for w in weights)

    if spec.get("optim", "lbfgs") == "lbfgs" and not spec.get("dropout"):
        opt = torch.optim.LBFGS(
            net.parameters(),
            lr=1.0,
            max_iter=spec.get("iters", 500),
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-6,
            tolerance_change=1e-9,
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        opt.step(closure)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=spec.get("lr", 1e-3), weight_decay=0.0)
        g = torch.Generator().manual_seed(seed)
        for _ in range(spec.get("epochs", 200)):
            net.train()
            perm = torch.randperm(len(xt), generator=g)
            for k in range(0, len(xt), 64):
                b = perm[k : k + 64]
                opt.zero_grad()
                loss = lossf(net(xt[b]), yt[b]) + l2 * sum((w**2).sum() for w in weights)
                loss.backward()
                opt.step()
    net.eval()
    with torch.no_grad():
        return [torch.sigmoid(net(torch.from_numpy((e - mu) / sd).float())).numpy() for e in x_eval]


def _rate_rules(probs: np.ndarray, features: np.ndarray, classes: list[str]) -> np.ndarray:
    """TACHY / BRADY replaced by the plain clinical rate rules (> 100 / < 60 bpm, no AF exclusion) where the rate
    is measured: :mod:`models.rhythm_rules` with fixed cut-offs."""
    from models.rhythm_rules import RhythmRule, apply_rhythm_rules

    rules = [
        RhythmRule("TACHY", "heart_rate_bpm", "above", 100.0),
        RhythmRule("BRADY", "heart_rate_bpm", "below", 60.0),
    ]
    return apply_rhythm_rules(probs, features, FEATURE_NAMES, classes, rules)


def run_head(
    spec: dict[str, Any],
    data: dict[str, np.ndarray],
    tr: np.ndarray,
    te: np.ndarray,
    y: np.ndarray,
    classes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train on the records ``tr`` (bool mask), predict on the digitized features of ``te``; thresholds (C,)."""
    tr_idx, te_idx = np.flatnonzero(tr), np.flatnonzero(te)
    x, owner = _source(data, spec.get("source", "corrupted"), tr_idx)
    x_te = features_to_model_input(data[spec.get("eval_source", "digitized")][te_idx])
    spec = {**spec, "classes": classes}
    (probs,) = fit_predict(spec, x, y[owner], [x_te])
    mode = spec.get("thresholds", "0.5")
    thresholds = np.full(y.shape[1], 0.5)
    if mode in ("oof", "prior"):
        rng = np.random.default_rng(0)
        fold = rng.permutation(len(tr_idx)) % spec.get("folds", 5)
        oof_src = spec.get("oof_source", "digitized")
        oof_p, oof_y = [], []
        for k in range(spec.get("folds", 5)):
            inner, outer = tr_idx[fold != k], tr_idx[fold == k]
            xi, oi = _source(data, spec.get("source", "corrupted"), inner)
            xo, oo = _source(data, oof_src, outer)
            (p,) = fit_predict(spec, xi, y[oi], [xo])
            oof_p.append(p)
            oof_y.append(y[oo])
        oof_p, oof_y = np.concatenate(oof_p), np.concatenate(oof_y)
        if mode == "oof":
            thresholds = tune_thresholds(oof_p, oof_y)
            few = oof_y.sum(0) < spec.get("min_pos", 3)
            thresholds[few] = 0.5
        else:
            prev = y[tr_idx].mean(0)
            thresholds = np.array(
                [np.quantile(oof_p[:, j], 1 - prev[j]) if prev[j] > 0 else 0.5 for j in range(y.shape[1])]
            )
    if spec.get("rhythm_rules") and classes is not None:  # the entry's rules, fitted on the training rows
        from ecgfeatures.features import FEATURE_NAMES as names
        from models.rhythm_rules import apply_rhythm_rules, fit_rhythm_rules

        raw, own = _raw_source(data, spec.get("source", "corrupted"), tr_idx)
        rules = fit_rhythm_rules(raw, names, y[own], classes)
        probs = apply_rhythm_rules(
            probs, data[spec.get("eval_source", "digitized")][te_idx], names, classes, rules, thresholds
        )
    if spec.get("rate_rules") and classes is not None:
        probs = _rate_rules(probs, data["digitized"][te_idx], classes)
        for c in ("TACHY", "BRADY"):
            if c in classes:
                thresholds[classes.index(c)] = 0.5
    return probs, thresholds


RHY = [
    "heart_rate_bpm",
    "rr_mean_s",
    "rr_std_s",
    "rr_cv",
    "rmssd_s",
    "premature_fraction",
    "compensatory_pause_fraction",
    "ectopic_wide_fraction",
    "ectopic_narrow_fraction",
    "rhythm_measured",
]
ATR = [
    "rr_diff_median_ratio",
    "p_wave_corr",
    "p_wave_amp_mv",
    "p_wave_snr",
    "af_score",
    "tachy_score",
    "brady_score",
    "atrial_measured",
]
SUBSETS = {
    "TACHY": ["heart_rate_bpm", "rr_mean_s", "tachy_score", "af_score", "p_present_fraction", "rr_diff_median_ratio"],
    "BRADY": ["heart_rate_bpm", "rr_mean_s", "brady_score"],
    "AFIB/AFL": RHY + ATR + ["p_present_fraction"],
    "PAC": RHY + ATR + ["qrs_ms", "p_present_fraction"],
    "PVC": RHY + ["qrs_ms", "p_present_fraction", "qt_ms"],
}
RATE_ONLY = {k: SUBSETS[k] for k in ("TACHY", "BRADY")}


def _h(**kw: Any) -> dict[str, Any]:
    return kw


HEADS: dict[str, dict[str, Any]] = {
    "entry (TrainConfig defaults)": _h(model="product", source="corrupted4", rhythm_rules=True),
    "entry head without rhythm rules": _h(model="product", source="corrupted4"),
    "entry [test: true signals]": _h(model="product", source="corrupted4", rhythm_rules=True, eval_source="true"),
    "entry + rate rules (HR>100 | HR<60)": _h(model="product", source="corrupted4", rate_rules=True),
    "mlp256 corr 0.5": _h(model="mlp", hidden=[256], dropout=0.2, optim="adam", epochs=40, l2=1e-4, source="corrupted"),
    "lr true 0.5": _h(source="true", l2=1e-2),
    "lr corr 0.5": _h(source="corrupted", l2=1e-2),
    "lr dig 0.5": _h(source="digitized", l2=1e-2),
    "lr corr oof(dig)": _h(source="corrupted", l2=1e-2, thresholds="oof"),
    "lr corr oof(corr)": _h(source="corrupted", l2=1e-2, thresholds="oof", oof_source="corrupted"),
    "lr dig oof(dig)": _h(source="digitized", l2=1e-2, thresholds="oof"),
    "lr dig+corr oof(dig)": _h(source="digitized+corrupted", l2=1e-2, thresholds="oof"),
    "lr true+dig oof(dig)": _h(source="true+digitized", l2=1e-2, thresholds="oof"),
    "lr corr pw50 0.5": _h(source="corrupted", l2=1e-2, pw_limit=100.0),
    "lr dig pw50 0.5": _h(source="digitized", l2=1e-2, pw_limit=100.0),
    "lr dig+corr pw50 0.5": _h(source="digitized+corrupted", l2=1e-2, pw_limit=100.0),
    "lr corr pw50 l2=1e-1 0.5": _h(source="corrupted", l2=1e-1, pw_limit=100.0),
    "lr dig+corr pw50 oof(dig)": _h(source="digitized+corrupted", l2=1e-2, pw_limit=100.0, thresholds="oof"),
    "lr dig+corr l2=1e-1 oof(dig)": _h(source="digitized+corrupted", l2=1e-1, thresholds="oof"),
    "lr dig+corr l2=1e-3 oof(dig)": _h(source="digitized+corrupted", l2=1e-3, thresholds="oof"),
    "lr corr bal l2=1e-1": _h(source="corrupted", l2=1e-1, pw_limit=1e4),
    "lr corr bal l2=3e-1": _h(source="corrupted", l2=3e-1, pw_limit=1e4),
    "lr corr pw50 l2=3e-1": _h(source="corrupted", l2=3e-1, pw_limit=100.0),
    "lr corr pw50 l2=1": _h(source="corrupted", l2=1.0, pw_limit=100.0),
    "lr true pw50 l2=1e-1": _h(source="true", l2=1e-1, pw_limit=100.0),
    "lr dig+corr pw50 l2=1e-1": _h(source="digitized+corrupted", l2=1e-1, pw_limit=100.0),
    "lr dig+corr pw50 l2=3e-1": _h(source="digitized+corrupted", l2=3e-1, pw_limit=100.0),
    "lr corr pw50 l2=1e-1 oof(dig)": _h(source="corrupted", l2=1e-1, pw_limit=100.0, thresholds="oof"),
    "mlp32 corr pw50 l2=1e-1": _h(model="mlp", hidden=[32], source="corrupted", l2=1e-1, pw_limit=100.0),
    "lr corr bal l2=1e-1 subsets": _h(source="corrupted", l2=1e-1, pw_limit=1e4, subsets=SUBSETS),
    "lr corr bal l2=1e-1 rate subsets": _h(source="corrupted", l2=1e-1, pw_limit=1e4, subsets=RATE_ONLY),
    "lr dig+corr bal l2=1e-1 subsets": _h(source="digitized+corrupted", l2=1e-1, pw_limit=1e4, subsets=SUBSETS),
    "lr corr bal l2=1e-2 subsets": _h(source="corrupted", l2=1e-2, pw_limit=1e4, subsets=SUBSETS),
    "lr corr bal l2=1e-1 oof(corr)": _h(
        source="corrupted", l2=1e-1, pw_limit=1e4, thresholds="oof", oof_source="corrupted"
    ),
    "lr corr bal l2=1e-1 oof(corr) min20": _h(
        source="corrupted", l2=1e-1, pw_limit=1e4, thresholds="oof", oof_source="corrupted", min_pos=20
    ),
    "lr corr bal l2=1e-1 oof(dig) min20": _h(source="corrupted", l2=1e-1, pw_limit=1e4, thresholds="oof", min_pos=20),
    "lr corr bal l2=1e-1 4var": _h(source="corrupted4", l2=1e-1, pw_limit=1e4),
    "lr corr bal l2=1e-1 1var": _h(source="corrupted1", l2=1e-1, pw_limit=1e4),
    "lr corr bal l2=1e-1 [test: true]": _h(source="corrupted", l2=1e-1, pw_limit=1e4, eval_source="true"),
    "lr true bal l2=1e-1 [test: true]": _h(source="true", l2=1e-1, pw_limit=1e4, eval_source="true"),
    "mlp32 corr l2=3e-2": _h(model="mlp", hidden=[32], source="corrupted", l2=3e-2),
    "mlp32 dig+corr l2=3e-2 oof(dig)": _h(
        model="mlp", hidden=[32], source="digitized+corrupted", l2=3e-2, thresholds="oof"
    ),
    "mlp32 dig+corr l2=1e-1 oof(dig)": _h(
        model="mlp", hidden=[32], source="digitized+corrupted", l2=1e-1, thresholds="oof"
    ),
}
