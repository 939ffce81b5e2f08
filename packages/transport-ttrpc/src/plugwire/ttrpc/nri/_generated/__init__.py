"""Generated from github.com/containerd/nri v0.12.5 pkg/api/api.proto by scripts/codegen_nri.sh. Do not edit."""

NRI_MODULE_VERSION = "v0.12.5"
