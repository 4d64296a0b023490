#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: oci_image_exists
short_description: Whether image tags exist in their container registry, as a puller sees them
version_added: 0.1.0
author: honeyDue engineering (@honeydue)
description:
  - Asks each image's registry (OCI distribution API, registry v2) for the image's manifest with
    C(HEAD /v2/<repository>/manifests/<tag or digest>), accepting what a puller accepts (OCI index and
    manifest, Docker manifest list and manifest), with the credentials the cluster pulls with.
    A deploy runs it before it touches the cluster, so that a tag that was never pushed, or that the
    pull credentials cannot read, fails the deploy instead of a rollout stuck in C(ImagePullBackOff).
  - Follows the registry's authentication challenge as containerd and the Docker client do. C(Basic)
    sends O(username) and O(password) to the registry; C(Bearer) (Gitea's container registry, the
    distribution token flow) gets a token for C(repository:<repository>:pull) from the challenge's
    realm with those credentials, then asks again with the token. Without credentials it asks as an
    anonymous puller.
  - "Each image is C(exists) (the registry answered 2xx, with the manifest's digest), C(missing)
    (404, for example C(MANIFEST_UNKNOWN)), C(denied) (401 or 403 after authenticating, or the token
    endpoint refused the credentials) or C(error) (any other answer, no answer, or a reference that
    does not parse)."
  - Read-only; never reports a change.
options:
  images:
    description:
      - Full image references, C([host[:port]/]repository[:tag][@digest]), as a Pod's C(image) names them,
        for example C(git.example.com/honeydue/api:3f2c1d9).
      - A name without a registry host is on Docker Hub (C(docker.io), C(library/) for a single
        component); the tag defaults to C(latest); a digest wins over a tag.
      - Each distinct reference is checked once, in the order given.
    type: list
    elements: str
    required: true
  username:
    description:
      - User the cluster pulls with. Comes with O(password).
      - Anonymous when omitted or empty (so a role can pass an unset vault variable as V('')).
    type: str
  password:
    description: Password or access token of O(username). Never logged or returned.
    type: str
  insecure:
    description:
      - Talk plain HTTP to the registries (C(http://<host>/v2/...)), for a lab registry without TLS.
      - The credentials then cross the network unencrypted.
    type: bool
    default: false
  validate_certs:
    description: Verify the registry's (and the token endpoint's) TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: int
    default: 30
  fail_on_missing:
    description:
      - Fail when any image is not C(exists), with a message naming each such image and why.
      - When false, the task succeeds and RV(missing) lists them.
    type: bool
    default: true
attributes:
  check_mode:
    details: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    details: Nothing changes, so there is no diff.
notes:
  - Run it on the controller (a localhost play, or C(delegate_to=localhost)), or on a host that
    reaches the registry the way the cluster nodes do.
  - Gitea's token endpoint issues a token to any authenticated user and checks the permission when the
    token is used; a wrong password is C(denied) at the token endpoint (401 C(UNAUTHORIZED)), a user
    without access to the package is C(denied) by the registry (401 or 403).
  - "Registry behaviour relied on: the OCI distribution specification
    (U(https://github.com/opencontainers/distribution-spec/blob/main/spec.md#checking-if-content-exists-in-the-registry))
    and the token authentication specification (U(https://distribution.github.io/distribution/spec/auth/token/))."
extends_documentation_fragment:
  - honeydue.infra.attributes
"""

EXAMPLES = r"""
- name: The images of this deploy are in the registry, for the cluster's pull credentials
  honeydue.infra.oci_image_exists:
    images:
      - "git.example.com/honeydue/api:{{ deploy_sha }}"
      - "git.example.com/honeydue/worker:{{ deploy_sha }}"
    username: "{{ registry_pull_user }}"
    password: "{{ vault_registry_pull_token }}"
  delegate_to: localhost
  run_once: true

- name: A lab registry on plain HTTP; report, do not fail
  honeydue.infra.oci_image_exists:
    images: ["127.0.0.1:5000/honeydue/api:3f2c1d9"]
    username: deploy
    password: "{{ lab_registry_password }}"
    insecure: true
    fail_on_missing: false
  register: tags

- name: Build what is missing
  ansible.builtin.debug:
    msg: "to build: {{ tags.missing }}"
  when: tags.missing | length > 0
"""

RETURN = r"""
images:
  description: One entry per distinct reference of O(images), in the order given; on failure too.
  returned: always
  type: list
  elements: dict
  sample:
    - image: git.example.com/honeydue/api:3f2c1d9
      result: exists
      digest: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
      media_type: application/vnd.oci.image.index.v1+json
      status: 200
      code: null
      message: null
    - image: git.example.com/honeydue/worker:3f2c1d9
      result: missing
      digest: null
      media_type: null
      status: 404
      code: MANIFEST_UNKNOWN
      message: repository honeydue/worker has no manifest 3f2c1d9 (not pushed, or deleted)
  contains:
    image:
      description: The reference, as given.
      type: str
      returned: always
    result:
      description: C(exists), C(missing), C(denied) or C(error).
      type: str
      returned: always
    digest:
      description: The manifest's digest (C(Docker-Content-Digest)); null unless C(exists).
      type: str
      returned: always
    media_type:
      description: The manifest's media type (an index or a manifest); null unless C(exists).
      type: str
      returned: always
    status:
      description:
        - HTTP status of the answer that decided the result (the token endpoint's when it refused the
          credentials); null when no answer came.
      type: int
      returned: always
    code:
      description: The registry's error code (C(errors[0].code)), for example C(MANIFEST_UNKNOWN), C(UNAUTHORIZED), C(DENIED).
      type: str
      returned: always
    message:
      description: Why the image is not pullable, in words; null when it C(exists).
      type: str
      returned: always
missing:
  description: The references whose result is not C(exists) (missing, denied or error).
  returned: always
  type: list
  elements: str
  sample: ["git.example.com/honeydue/worker:3f2c1d9"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.honeydue.infra.plugins.module_utils._oci_registry import (
    check_images, failure_message, not_existing, open_url_transport)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            images=dict(type="list", elements="str", required=True),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            insecure=dict(type="bool", default=False),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=30),
            fail_on_missing=dict(type="bool", default=True),
        ),
        required_together=[("username", "password")],
        supports_check_mode=True,
    )
    p = module.params
    transport = open_url_transport(timeout=p["timeout"], validate_certs=p["validate_certs"])
    images = check_images(p["images"], transport, p["username"], p["password"], insecure=p["insecure"])
    missing = not_existing(images)
    if missing and p["fail_on_missing"]:
        module.fail_json(msg=failure_message(images, p["password"]), changed=False, images=images, missing=missing)
    module.exit_json(changed=False, images=images, missing=missing)


if __name__ == "__main__":
    main()
