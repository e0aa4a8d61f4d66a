package demo

import (
	_ "embed"
	"strings"
)

//go:embed rules.yaml
var rulesTemplate string

// Rules is the demo's rules file, sending to the receiver on listen.
func Rules(listen string) []byte {
	return []byte(strings.ReplaceAll(rulesTemplate, "{{LISTEN}}", listen))
}
