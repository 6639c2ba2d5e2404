package vault

import (
	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

// parseFields parses the Fields templates ([sinks.ParseFields]) and refuses
// the keys a Vault sink reserves: the secret's key, and in KV v1 the key
// where the metadata is stored. Its problems are field errors of
// "fields.<key>".
func parseFields(secretField string, fields map[string]string, kvVersion int) (sinks.Fields, error) {
	var errs []error
	rest := make(map[string]string, len(fields))
	for k, v := range fields {
		p := field.Path("fields", k)
		switch {
		case k == "":
			errs = append(errs, field.Errorf("fields", "a key is empty"))
		case k == secretField:
			errs = append(errs, field.Errorf(p, "%q is the field that holds the token", k))
		case kvVersion == 1 && k == metadataKey:
			errs = append(errs, field.Errorf(p, "%q is where KV v1 metadata is stored", k))
		default:
			rest[k] = v
		}
	}
	parsed, err := sinks.ParseFields(rest)
	return parsed, field.Join(append(errs, err)...)
}

// formatTime is how the sink stores times ([sinks.FormatTime]).
var formatTime = sinks.FormatTime
