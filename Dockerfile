# PhysioNet Challenge 2024 image for derc-ecg. The organizers build it and run it with an NVIDIA GPU;
# torch from PyPI (2.14.1, x86_64) is the CUDA build and falls back to the CPU when no GPU is present.
FROM python:3.11-slim

WORKDIR /challenge

COPY requirements.txt /challenge/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt

COPY . /challenge

# Compile the digitizer's numba kernels into the image (derc/digitize/__pycache__): a first import compiles them
# (30-35 s on a 2-core AVX2 host), later processes load them (~1.6 s). numba keys its cache on the CPU, so a run
# host of another CPU kind compiles them once more in each container instead.
RUN python -c "import derc.digitize"

# Nothing is downloaded at run time: model weights come from the model folder given to run_model.py.
ENV PYTHONUNBUFFERED=1
