module lab/goapp

go 1.23
