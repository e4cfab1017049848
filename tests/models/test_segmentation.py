"""Tests for models.segmentation: head shapes and size, loss, letterboxed targets, page mapping, overfitting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.backbone import PageTransform, count_parameters, create_backbone, letterbox
from models.config import BackboneConfig, ConfigError
from models.segmentation import (
    IGNORE_INDEX,
    NUM_CLASSES,
    TRACE_CLASS,
    SegmentationHead,
    SegmentationHeadConfig,
    predict_trace_probabilities,
    predict_trace_tiles,
    random_training_crops,
    segmentation_loss,
    target_from_class_mask,
    trace_probability,
)

TINY_CONVNEXT = {"model_type": "convnextv2", "depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64]}
ATTO_CHANNELS, ATTO_REDUCTIONS = [40, 80, 160, 320], [4, 8, 16, 32]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the network or see a developer's backbone folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ECG_BACKBONE_DIR", raising=False)
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tiny models run far faster on one thread than on cores shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_backbone(height: int = 64, width: int = 128):
    return create_backbone(
        BackboneConfig(
            source="hf",
            name="ecg-test/tiny",
            pretrained=False,
            hf_config=dict(TINY_CONVNEXT),
            image_height=height,
            image_width=width,
        )
    )


def fake_features(batch: int, height: int, width: int, channels=ATTO_CHANNELS, reductions=ATTO_REDUCTIONS):
    return [torch.randn(batch, c, height // r, width // r) for c, r in zip(channels, reductions)]


# --------------------------------------------------------------------------------------------------
# Head
# --------------------------------------------------------------------------------------------------
def test_head_output_at_input_resolution_with_tiny_backbone() -> None:
    bb = tiny_backbone()
    head = SegmentationHead(bb.channels, bb.reductions, decoder_channels=16)
    x = torch.randn(2, 3, 64, 128)
    logits = head(bb(x))
    assert logits.shape == (2, NUM_CLASSES, 64, 128)
    assert torch.isfinite(logits).all()
    finest = head(bb(x), full_resolution=False)
    assert finest.shape == (2, NUM_CLASSES, 16, 32)
    assert head(bb(x), output_size=(40, 50)).shape == (2, NUM_CLASSES, 40, 50)


@pytest.mark.parametrize("upsample", ["bilinear", "pixelshuffle"])
def test_head_parameter_count_atto_and_shapes(upsample: str) -> None:
    head = SegmentationHead(ATTO_CHANNELS, ATTO_REDUCTIONS, decoder_channels=64, upsample=upsample)
    n = count_parameters(head)
    assert 50_000 < n < 1_000_000
    logits = head(fake_features(1, 128, 256))
    assert logits.shape == (1, NUM_CLASSES, 128, 256)
    assert head(fake_features(1, 128, 256), full_resolution=False).shape == (1, NUM_CLASSES, 32, 64)


def test_head_stage_subset_uses_finest_selected_stride() -> None:
    head = SegmentationHead(ATTO_CHANNELS, ATTO_REDUCTIONS, decoder_channels=32, stages=[3, 1])
    assert head.stages == [1, 3] and head.stride == 8
    logits = head(fake_features(1, 64, 128))
    assert logits.shape == (1, NUM_CLASSES, 64, 128)
    # the unused stage must not influence the output
    feats = fake_features(1, 64, 128)
    out1 = head(feats)
    feats[0] = torch.randn_like(feats[0]) * 100
    assert torch.allclose(out1, head(feats))
    with pytest.raises(ValueError):
        SegmentationHead(ATTO_CHANNELS, ATTO_REDUCTIONS, stages=[5])
    with pytest.raises(ValueError):
        head(fake_features(1, 64, 128)[:2])


def test_head_initial_prediction_follows_prior() -> None:
    head = SegmentationHead(ATTO_CHANNELS, ATTO_REDUCTIONS)
    probs = torch.softmax(head(fake_features(1, 64, 64)), dim=1).mean(dim=(0, 2, 3))
    assert int(probs.argmax()) == 0  # background dominates at start
    assert 0.01 < float(probs[TRACE_CLASS].detach()) < 0.1


def test_config_round_trip_and_validation() -> None:
    cfg = SegmentationHeadConfig(
        decoder_channels=32, stages=[0, 1, 2], trace_weight=3.0, dice_weight=0.5, upsample="pixelshuffle"
    )
    d = cfg.to_dict()
    assert d["config_version"] >= 1
    back = SegmentationHeadConfig.from_dict(d)
    assert back == cfg
    head = SegmentationHead.from_config(back, ATTO_CHANNELS, ATTO_REDUCTIONS)
    assert head.stages == [0, 1, 2] and head.upsample_mode == "pixelshuffle" and head.config is back
    with pytest.raises(ConfigError):
        SegmentationHeadConfig.from_dict({**d, "decoder_chanels": 3})
    with pytest.raises(ConfigError):
        SegmentationHeadConfig(decoder_channels=0)
    with pytest.raises(ConfigError):
        SegmentationHeadConfig(upsample="bicubic")
    with pytest.raises(ConfigError):
        SegmentationHeadConfig(trace_weight=-1.0)


# --------------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------------
def test_loss_finite_with_ignore_pixels_and_gradients() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, NUM_CLASSES, 16, 24, generator=g, requires_grad=True)
    target = torch.randint(0, NUM_CLASSES, (2, 16, 24), generator=g)
    target[:, 10:, :] = IGNORE_INDEX
    target[1] = IGNORE_INDEX  # one image fully padded
    total, parts = segmentation_loss(logits, target)
    assert torch.isfinite(total) and total.item() > 0
    assert set(parts) == {"ce", "dice", "total"} and all(np.isfinite(v) for v in parts.values())
    assert parts["total"] == pytest.approx(parts["ce"] + parts["dice"], rel=1e-5)
    total.backward()
    assert torch.isfinite(logits.grad).all()
    # ignored pixels get no gradient
    assert logits.grad[:, :, 10:, :].abs().max() == 0
    assert logits.grad[:, :, :10, :].abs().max() > 0


def test_loss_all_ignored_is_zero_and_finite() -> None:
    logits = torch.randn(1, NUM_CLASSES, 8, 8, requires_grad=True)
    target = torch.full((1, 8, 8), IGNORE_INDEX, dtype=torch.long)
    total, parts = segmentation_loss(logits, target)
    total.backward()
    assert torch.isfinite(total) and parts["ce"] == 0.0
    assert torch.isfinite(logits.grad).all()


def test_loss_prefers_correct_prediction_and_weights_trace() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 4, :] = TRACE_CLASS
    good = torch.full((1, NUM_CLASSES, 8, 8), -5.0)
    good.scatter_(1, target[:, None], 5.0)
    bad = torch.zeros_like(good)
    assert segmentation_loss(good, target)[0] < segmentation_loss(bad, target)[0]
    # missing the trace costs more with a larger trace weight
    miss = good.clone()
    miss[0, TRACE_CLASS, 4, :] = -5.0
    miss[0, 0, 4, :] = 5.0
    low = segmentation_loss(miss, target, trace_weight=1.0, dice_weight=0.0)[1]["ce"]
    high = segmentation_loss(miss, target, trace_weight=10.0, dice_weight=0.0)[1]["ce"]
    assert high > low
    assert segmentation_loss(miss, target)[1]["dice"] > 0.8  # 1 - smooth / (8 + smooth)


def test_loss_resizes_target_and_rejects_bad_labels() -> None:
    logits = torch.zeros(1, NUM_CLASSES, 8, 8, requires_grad=True)
    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[:, 16:, :] = TRACE_CLASS
    total, _ = segmentation_loss(logits, target)
    total.backward()
    assert torch.isfinite(total)
    # the trace half of the resized target pulls the trace logit up there, down elsewhere
    assert logits.grad[0, TRACE_CLASS, 6, 3] < 0 < logits.grad[0, TRACE_CLASS, 1, 3]
    with pytest.raises(ValueError):
        segmentation_loss(logits, torch.full((1, 8, 8), 7, dtype=torch.long))
    with pytest.raises(TypeError):
        segmentation_loss(logits, torch.zeros(1, 8, 8))


# --------------------------------------------------------------------------------------------------
# Targets and page mapping
# --------------------------------------------------------------------------------------------------
def test_target_keeps_one_pixel_trace_when_downscaling_and_pads_255() -> None:
    page_h, page_w = 200, 400
    mask = np.zeros((page_h, page_w), np.uint8)
    mask[::20, :] = 1  # grid rows
    mask[:, 101] = 3  # a 1-px vertical trace
    mask[57, :] = 3  # a 1-px horizontal trace on a row that a plain nearest resize skips
    image = np.full((page_h, page_w, 3), 255, np.uint8)
    # input 64 x 100: scale 0.25 (limited by width), page occupies 50 x 100, rows 50..63 are padding
    _, tr = letterbox(image, 64, 100)
    assert tr.scale == pytest.approx(0.25) and tr.resized_height == 50
    target = target_from_class_mask(mask, tr, 64, 100)
    assert target.shape == (64, 100) and target.dtype == np.int64
    assert (target[50:] == IGNORE_INDEX).all()
    assert not (target[:50] == IGNORE_INDEX).any()
    assert (target[:50, 25] == TRACE_CLASS).all()  # vertical trace at x = 101 / 4
    assert (target[14, :] == TRACE_CLASS).all()  # horizontal trace at y = 57 / 4
    assert set(np.unique(target[:50])) <= {0, 1, 3}
    # plain nearest would lose the horizontal trace: the max-pooling is doing the work
    plain = target_from_class_mask(mask, tr, 64, 100, preserve_classes=())
    assert not (plain[14, :] == TRACE_CLASS).all()
    # at the finest stride of a 256 x 400 input (same page, scale 1): another 4x downscale
    _, tr1 = letterbox(image, 256, 400)
    finest = target_from_class_mask(mask, tr1, 64, 100, input_size=(256, 400))
    assert np.array_equal(finest, target)


def test_target_upscaling_and_errors() -> None:
    mask = np.zeros((10, 20), np.uint8)
    mask[5, 4] = 3
    _, tr = letterbox(np.full((10, 20, 3), 255, np.uint8), 40, 60)  # scale 3 (width), 30 x 60
    target = target_from_class_mask(mask, tr, 40, 60)
    assert (target[30:] == IGNORE_INDEX).all()
    assert (target[15:18, 12:15] == TRACE_CLASS).all() and (target == TRACE_CLASS).sum() == 9
    with pytest.raises(ValueError):
        target_from_class_mask(np.zeros((11, 20), np.uint8), tr, 40, 60)  # wrong page size
    with pytest.raises(ValueError):
        target_from_class_mask(np.full((10, 20), 9, np.uint8), tr, 40, 60)  # bad label


def test_trace_probability_maps_blob_back_to_page() -> None:
    page_h, page_w = 300, 500
    _, tr = letterbox(np.full((page_h, page_w, 3), 255, np.uint8), 64, 128)  # scale 64/300: 64 x 107 px
    assert tr.resized_width < 128
    logits = torch.zeros(NUM_CLASSES, 64, 128)
    logits[0] = 5.0  # background everywhere
    # a trace blob at page (x 200..260, y 100..160) -> model coordinates
    x0, y0 = tr.to_model(200, 100)
    x1, y1 = tr.to_model(260, 160)
    logits[TRACE_CLASS, int(round(y0)) : int(round(y1)), int(round(x0)) : int(round(x1))] = 20.0
    blob_only = logits.clone()
    logits[TRACE_CLASS, tr.resized_height :, :] = 20.0  # padding rows must be cropped away
    logits[TRACE_CLASS, :, tr.resized_width :] = 20.0
    for lg, size in ((logits, None), (logits[None], None)):
        prob = trace_probability(lg, tr, input_size=size)
        assert prob.shape == (page_h, page_w) and prob.dtype == np.float32
        assert 0.0 <= prob.min() and prob.max() <= 1.0
        ys, xs = np.nonzero(prob > 0.5)
        assert abs(xs.min() - 200) <= 4 and abs(xs.max() - 259) <= 4
        assert abs(ys.min() - 100) <= 4 and abs(ys.max() - 159) <= 4
        assert prob[0:50, 0:100].max() < 0.01 and prob[-20:, -20:].max() < 0.01
    # the same map given at the finest stride (4x smaller) lands at the same place
    small = torch.nn.functional.avg_pool2d(blob_only[None], 4)[0]
    small[TRACE_CLASS, :, 27:] = 20.0  # padding cells (page ends at 107 / 4 = 26.75) must not bleed in
    prob4 = trace_probability(small, tr, input_size=(64, 128))
    assert prob4.shape == (page_h, page_w)
    ys, xs = np.nonzero(prob4 > 0.5)
    assert abs(xs.mean() - 229.5) <= 6 and abs(ys.mean() - 129.5) <= 6
    assert prob4[:, -10:].max() < 0.01
    with pytest.raises(ValueError):
        trace_probability(torch.zeros(2, NUM_CLASSES, 8, 8), tr)


def test_trace_probability_transform_with_offset() -> None:
    tr = PageTransform(
        scale=0.5, pad_top=4, pad_left=8, resized_height=20, resized_width=30, page_height=40, page_width=60
    )
    logits = torch.zeros(NUM_CLASSES, 32, 48)
    logits[TRACE_CLASS, 4 + 10, 8 : 8 + 30] = 10.0  # model row 14 = page rows 20..21
    prob = trace_probability(logits, tr)
    assert prob.shape == (40, 60)
    assert int(np.argmax(prob[:, 30])) in (20, 21)


# --------------------------------------------------------------------------------------------------
# Overfitting one synthetic page
# --------------------------------------------------------------------------------------------------
def synthetic_page(height: int, width: int, thickness: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """White page with red grid lines and one black sine trace, and its class mask (0/1/3)."""
    image = np.full((height, width, 3), 255, np.uint8)
    classes = np.zeros((height, width), np.uint8)
    for x in range(0, width, 16):
        cv2.line(image, (x, 0), (x, height - 1), (240, 120, 120), 1)
        cv2.line(classes, (x, 0), (x, height - 1), 1, 1)
    for y in range(0, height, 16):
        cv2.line(image, (0, y), (width - 1, y), (240, 120, 120), 1)
        cv2.line(classes, (0, y), (width - 1, y), 1, 1)
    xs = np.arange(width)
    ys = np.round(height / 2 + height / 4 * np.sin(xs / width * 4 * np.pi)).astype(np.int32)
    pts = np.stack([xs, ys], axis=1).reshape(-1, 1, 2)
    cv2.polylines(image, [pts], False, (0, 0, 0), thickness)
    cv2.polylines(classes, [pts], False, TRACE_CLASS, thickness)
    return image, classes


def test_tiny_model_overfits_one_page() -> None:
    height, width = 64, 128
    image, classes = synthetic_page(height, width)
    bb = tiny_backbone(height, width)
    head = SegmentationHead(bb.channels, bb.reductions, decoder_channels=32)
    pixels, transforms = bb.preprocess_with_transforms(image)
    target = torch.from_numpy(target_from_class_mask(classes, transforms[0], height, width))[None]
    opt = torch.optim.AdamW(list(bb.parameters()) + list(head.parameters()), lr=3e-3)
    gt = target[0] == TRACE_CLASS

    def iou(logits: torch.Tensor) -> float:
        pred = torch.softmax(logits, dim=1)[0, TRACE_CLASS] > 0.5
        return float((pred & gt).sum()) / max(1.0, float((pred | gt).sum()))

    with torch.no_grad():
        start = iou(head(bb(pixels)))
    for _ in range(60):
        loss, _ = segmentation_loss(head(bb(pixels)), target, trace_weight=5.0, dice_weight=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert start < 0.1
    with torch.no_grad():
        assert iou(head(bb(pixels))) > 0.5
    # page-level inference path: the trace probability lies on the drawn curve
    probs = predict_trace_probabilities(bb, head, [image])
    assert probs[0].shape == (height, width)
    on, off = probs[0][classes == TRACE_CLASS].mean(), probs[0][classes == 0].mean()
    assert on > 0.5 > off
    assert head.training  # the training mode is restored


# --------------------------------------------------------------------------------------------------
# Native resolution: training crops and tiled inference
# --------------------------------------------------------------------------------------------------
def test_input_mode_is_validated() -> None:
    assert SegmentationHeadConfig(input_mode="tiles").input_mode == "tiles"
    with pytest.raises(ConfigError, match="input_mode"):
        SegmentationHeadConfig(input_mode="native")


def test_random_training_crops_follow_the_mask() -> None:
    rng = np.random.default_rng(3)
    image = np.full((150, 220, 3), 250, np.uint8)
    mask = np.zeros((150, 220), np.uint8)
    mask[70:72, 10:210] = TRACE_CLASS
    image[mask == TRACE_CLASS] = 0
    crops = random_training_crops(image, mask, 64, 96, 40, rng)
    assert len(crops) == 40
    on_trace = 0
    for pixels, target in crops:
        assert pixels.shape == (64, 96, 3) and target.shape == (64, 96) and target.dtype == np.uint8
        inside = target != IGNORE_INDEX
        assert inside.all()  # the page is larger than a crop: never padded
        np.testing.assert_array_equal(pixels[..., 0] == 0, target == TRACE_CLASS)  # pixels and labels aligned
        on_trace += int((target == TRACE_CLASS).any())
    assert on_trace >= 25  # most crops are centred near the trace
    # a page smaller than the crop: white padding, ignored in the target
    pixels, target = random_training_crops(image[:50, :60], mask[:50, :60], 64, 96, 1, rng)[0]
    assert (target == IGNORE_INDEX).sum() == 64 * 96 - 50 * 60 and (pixels[target == IGNORE_INDEX] == 255).all()


class _PixelBackbone(torch.nn.Module):
    """A stand-in backbone with a 1x1 receptive field: its 'feature' is the normalised pixel itself."""

    image_height, image_width = 48, 64

    def preprocess_with_transforms(self, images):
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
        return x, [None] * len(images)

    def forward(self, x):
        return [x]


class _DarkIsTrace(torch.nn.Module):
    def forward(self, feats, output_size=None):
        dark = 1.0 - feats[0][:, :1]
        return torch.cat([torch.zeros_like(dark)] * 3 + [8.0 * (dark - 0.5)], dim=1)


def test_tiles_cover_the_page_exactly() -> None:
    """With a per-pixel network the stitched map equals the per-pixel answer everywhere (no seams, gaps or
    shifts), for pages smaller and larger than a tile."""
    rng = np.random.default_rng(1)
    for shape in ((30, 40), (48, 64), (131, 257)):
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        prob = predict_trace_tiles(_PixelBackbone(), _DarkIsTrace(), image, margin=8, batch=3)
        dark = 1.0 - image[..., 0].astype(np.float32) / 255.0
        expect = torch.softmax(torch.stack([torch.zeros(shape)] * 3 + [torch.from_numpy(8.0 * (dark - 0.5))]), 0)[3]
        assert prob.shape == shape and prob.dtype == np.float32
        np.testing.assert_allclose(prob, expect.numpy(), atol=1e-5)


def test_tiles_with_a_real_head_give_a_page_map() -> None:
    bb = tiny_backbone(64, 64)
    head = SegmentationHead(bb.channels, bb.reductions, decoder_channels=8)
    image = np.full((100, 150, 3), 255, np.uint8)
    prob = predict_trace_tiles(bb, head, image)
    assert prob.shape == (100, 150) and np.isfinite(prob).all() and 0 <= prob.min() <= prob.max() <= 1
