# The least a Vault token needs for the rotator's vault sink, when every
# destination lives under secret/unleash/ in a KV v2 mount named "secret".
#
#   vault policy write unleash-rotator deploy/kubernetes/vault-policy.hcl
#   vault write auth/kubernetes/role/unleash-rotator \
#       bound_service_account_names=unleash-rotator \
#       bound_service_account_namespaces=unleash-rotator \
#       audience=vault token_policies=unleash-rotator token_ttl=1h
#
# audience=vault matches the token the vault-auth component (Helm:
# vaultAuth.enabled) mounts at /var/run/secrets/vault/token; point the vault
# sink's auth.jwt_path there.
#
# "create" on metadata/ because a new key is created by its metadata write
# (the rotator writes metadata before data). No "delete", no "list", and
# nothing outside secret/unleash/. Renewing and looking up its own token,
# and reading mount information, are in Vault's default policy.
path "secret/data/unleash/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/unleash/*" {
  capabilities = ["create", "read", "update"]
}

# `rotator check` asks Vault what the token may do, without writing.
path "sys/capabilities-self" {
  capabilities = ["update"]
}
