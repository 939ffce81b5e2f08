from plugwire.grpc.terraform.examples.fsstate import main

main()
