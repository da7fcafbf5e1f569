// Command idtx is an RFC 8693 token exchange client, a local Security Token
// Service, and the tools to see why an exchange failed.
package main

import (
	"os"

	"github.com/idtx/idtx/cmd"
)

func main() { os.Exit(cmd.Main()) }
