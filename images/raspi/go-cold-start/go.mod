module lab/gocoldstart

go 1.23
