"""Generated protobuf modules (scripts/codegen_ttrpc.sh); do not edit."""
