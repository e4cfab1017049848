# The image the organisers run (with a GPU): the pinned requirements.txt the tests run with, torch 2.13.0
# included, and no network at run time.
#
#   docker build -t ecg-entry .
#   docker run --rm --gpus all -v "$PWD/demo_output:/challenge/demo" ecg-entry \
#       python run_model.py -d demo/test_hidden -m demo/model -o demo/docker_outputs
FROM python:3.11-slim

WORKDIR /challenge

# torch==2.13.0 from PyPI is the CUDA build on Linux x86_64 (its CUDA libraries come as nvidia-* wheels; the host
# needs only the NVIDIA driver and the container toolkit). It also runs on the CPU when no GPU is given.
COPY requirements.txt /challenge/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt \
 && python -c "import torch; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"

COPY ./ /challenge

# The configured pre-trained backbone, downloaded at build time into the image.
ARG BACKBONE=facebook/convnextv2-atto-1k-224
RUN python -m models.fetch_weights "${BACKBONE}" -o /challenge/pretrained

# Nothing is fetched when the organisers run the image.
ENV ECG_BACKBONE_DIR=/challenge/pretrained \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
