# The pipeline image: every service (`pipeline serve <stage>`) and the coordinator (`pipeline run`).
#   docker build -t pipeline .                                  # CPU (libtorch-cpu)
#   docker build -t pipeline:cuda --build-arg TORCH_BACKEND=cuda \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .   # GPU trainer (libtorch-cuda-12.8)
# The CUDA variant needs the libtorch-cuda package from NuGet and a CUDA runtime base with .NET added (docs/trainer.md);
# it cannot be built on the CI machine, which has no CUDA packages.
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime:10.0

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TORCH_BACKEND=cpu
WORKDIR /src
COPY . .
RUN dotnet publish src/Cli -c Release -o /app -p:TorchBackend=$TORCH_BACKEND

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /app .
# The sample site, recipes' data and the shipped evaluation tasks (run --eval-tasks defaults to tasks/*.yaml).
COPY samples ./samples
COPY tasks ./tasks
# Not root: a service that a hostile page or message could confuse holds no more than its own data folder.
RUN useradd --system --uid 10001 --home-dir /data --create-home pipeline && chown pipeline /data
USER 10001
WORKDIR /data
ENTRYPOINT ["dotnet", "/app/pipeline.dll"]
