"""OCI and registries: the registry client, credentials, references, index forms and push."""
