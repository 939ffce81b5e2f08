module plugwire.test/interop/drp

go 1.26
