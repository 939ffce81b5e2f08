"""Terraform providers on plugwire's go-plugin server (tfplugin5/tfplugin6)."""
