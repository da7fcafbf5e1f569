package cmd

import "os"

func envSet(name string) bool {
	_, ok := os.LookupEnv(name)
	return ok
}
