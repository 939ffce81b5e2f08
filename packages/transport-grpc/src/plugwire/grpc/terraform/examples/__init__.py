"""Example Terraform providers built on plugwire.grpc.terraform."""
