package container

import "flag"

// update rewrites the golden files in testdata/.
var update = flag.Bool("update", false, "rewrite golden files in testdata")
