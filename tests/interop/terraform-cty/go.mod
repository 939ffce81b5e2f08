// Golden-vector oracle for plugwire.grpc.terraform.cty. go-cty and msgpack at the
// versions Terraform v1.13.3 builds with (terraform-plugin-go v0.31.0 has its own
// tftypes codec and no go-cty dependency).
module plugwire.test/terraform-cty

go 1.24

require github.com/zclconf/go-cty v1.16.3

require (
	github.com/apparentlymart/go-textseg/v15 v15.0.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	golang.org/x/text v0.26.0 // indirect
)
