# The image the organisers run: GPU-capable PyTorch, no network at run time.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

WORKDIR /challenge
COPY ./ /challenge

# torch comes from the base image; everything else is pinned in requirements.txt.
RUN grep -vE '^torch==' requirements.txt > /tmp/requirements-docker.txt \
 && pip install --no-cache-dir -r /tmp/requirements-docker.txt

# The configured pre-trained backbone, downloaded at build time into the image.
ARG BACKBONE=facebook/convnextv2-atto-1k-224
RUN python -m models.fetch_weights "${BACKBONE}" -o /challenge/pretrained

# Nothing is fetched when the organisers run the image.
ENV ECG_BACKBONE_DIR=/challenge/pretrained \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
