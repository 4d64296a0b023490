"""A real container registry for the lab (Debian's distribution/registry 2.8 with htpasswd or
Gitea-style token auth), the lab's labelled OCI images, and the kubelet stand-in's pull."""
