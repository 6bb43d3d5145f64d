module lab/crashtest

go 1.23
