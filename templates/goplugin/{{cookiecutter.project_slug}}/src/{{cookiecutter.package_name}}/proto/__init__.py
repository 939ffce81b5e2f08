"""Generated from proto/kv.proto by scripts/codegen.sh (do not edit by hand)."""
