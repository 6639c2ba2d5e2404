// Package kubernetes publishes secrets into Kubernetes Secrets, for
// consumers that read their Unleash token from a Secret (an env var from
// secretKeyRef, a mounted volume).
//
// # Destinations
//
// A destination path is a Secret name ("unleash-checkout") in
// [Config.Namespace] (default: the rotator's own namespace), or
// "namespace/name". Both parts must be valid DNS names.
//
// # What a Secret holds
//
// The sink owns, in each Secret it writes:
//
//   - the data key [Config.Key] ("token"), holding the token;
//   - the data keys of [Config.Fields], rendered from their templates;
//   - every label and annotation whose key starts with [Prefix]
//     ("unleash-rotator.io/"): the label [ManagedLabel] and the annotations
//     [FingerprintAnnotation], [RotationIDAnnotation], [TokenNameAnnotation],
//     [ExpiresAtAnnotation] and [MetadataAnnotation] (the whole metadata as
//     JSON, which Get reads back).
//
// Everything else (other data keys, other labels and annotations, owner
// references) belongs to someone else and is kept as it is. A Secret that
// does not exist is created (type Opaque). An immutable Secret, or one of
// another type than Opaque, is refused with an error that says what to do.
//
// A Secret is one object, so a write is atomic: the token and its metadata
// change together or not at all, and the sink needs no "previous" slot as
// the Vault sink does. Get computes the token's fingerprint and trusts the
// metadata only if it names that fingerprint; a token written by someone
// else comes back with only Metadata.Fingerprint set.
//
// # Versions and conflicts
//
// Record.Version identifies the part of the Secret the sink owns (a SHA-256
// over the owned keys listed above), not the Secret's resourceVersion. The
// resourceVersion changes whenever anything in the Secret changes: another
// controller adding a key, a label edited by hand. Using it as the version
// would turn every such change between Get and Put into a conflict, and the
// rotation would stall, although the token the engine read is still the one
// there. What the engine's check-and-set must catch is a change of the
// token (or of its metadata), and that is what the owned version covers.
//
// Put therefore reads the Secret, compares its owned version with prev
// (ErrConflict if they differ, or if the Secret was deleted since Get), and
// writes the update carrying the resourceVersion it just read. If the API
// server refuses it (409: someone wrote in between), Put reads again and
// retries, as long as the owned part is still prev, up to 5 times. So a
// concurrent writer of the token is always detected (its write changes the
// owned version), a writer of other keys never loses its change, and
// nothing is overwritten blindly. prev "" means "no token": Put creates
// the Secret, or adds the token to an existing Secret without one.
//
// # Restarting consumers
//
// Consumers that read the token once at start-up (an env var) need a
// restart to pick up a new one. [Config.Restart] lists such workloads; after
// writing a Secret, Put patches the pod template annotation
// [RestartAnnotation] of each workload listed for it, and the Deployment or
// StatefulSet controller rolls its pods. A failed patch does not undo the
// write: Put returns an error matching [rotation.ErrAfterWrite], which the
// engine reports without failing the other sinks. Consumers that mount the
// Secret as a volume see the new token within the kubelet's sync period
// without a restart.
//
// # Permissions
//
// For a destination Secret s in namespace n, a Role in n needs:
//
//	rules:
//	  - apiGroups: [""]
//	    resources: ["secrets"]
//	    resourceNames: ["s"]
//	    verbs: ["get", "update"]
//	  - apiGroups: [""]          # only if the sink creates the Secret:
//	    resources: ["secrets"]   # RBAC cannot limit "create" to names
//	    verbs: ["create"]
//
// and, for each workload w to restart, in its namespace:
//
//	rules:
//	  - apiGroups: ["apps"]
//	    resources: ["deployments"]   # or statefulsets
//	    resourceNames: ["w"]
//	    verbs: ["patch"]
//
// [Sink.Check] verifies these with SelfSubjectAccessReview, which every
// authenticated user may do. Errors for a 403 name the missing verb and
// resource; a 401 says the credentials are invalid or expired.
//
// Errors and logs never contain the token: only its fingerprint.
package kubernetes
