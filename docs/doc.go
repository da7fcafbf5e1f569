// Package docs holds idtx's documentation pages. It has no code: its test
// loads the configuration snippets of idps.md and validates a token shaped
// as each IDP issues it, so that the recipes keep working.
package docs
