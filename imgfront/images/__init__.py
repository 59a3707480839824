"""Images as blobs on this host: a content-addressed store of exported images, and their canonical form."""
