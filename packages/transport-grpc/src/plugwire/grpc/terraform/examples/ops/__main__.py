from plugwire.grpc.terraform.examples.ops import main

main()
