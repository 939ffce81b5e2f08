from plugwire.grpc.terraform.examples.thing import main

main()
