"""Pure building blocks of the K3s v1.34 stand-in: config files, tokens, releases, PKI, passwd."""
