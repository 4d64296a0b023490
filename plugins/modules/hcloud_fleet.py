#!/usr/bin/python
# Copyright: (c) 2026, honeyDue engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hcloud_fleet
short_description: Create a set of Hetzner Cloud servers concurrently, idempotently, never recreating one
version_added: 0.1.0
author: honeyDue engineering (@honeydue)
description:
  - Ensures that every server listed in O(servers) exists, all alike (type, image, location, SSH keys,
    placement group, networks, cloud-init user data) with delete and rebuild protection on. Missing
    servers are created concurrently - every create request is posted first, then all their actions
    are waited for together (polled in one request) - so creating N servers takes about as long as
    creating one.
  - Why not C(hetzner.hcloud.server) - it manages one server per task and waits for that server's
    create, start and protection actions before returning; in a loop over N servers the waits add
    up (N x the create time), and with C(async) every server would be a separate process, its own
    client and its own polling. This module is the smallest thing that posts every create and then
    waits on all the actions. Keys, placement group, firewall and network are left to the
    C(hetzner.hcloud) modules, where one call per resource is all there is.
  - A server that exists is never recreated or changed because an attribute differs (server type,
    image, location, placement group, labels, networks); the difference is reported in RV(drift)
    and as a warning. Only its protection is turned back on when it was turned off.
  - The servers of the fleet are those carrying O(selector_labels). A server of the fleet that is
    not listed any more (scale in) is never deleted unless O(allow_delete=true), and then only when
    it was confirmed removed from K3s - its name is in O(confirmed_removed) or it carries the label
    O(removed_label)C(=true); otherwise the module fails before any change (RV(failure.code) C(scale_in_refused)).
  - Before any create, the server type, location, image, SSH keys, placement group and networks are
    looked up, and every name to create is checked against the whole project; an unknown resource,
    or a name already used by a server outside the fleet (RV(failure.code) C(name_taken)), fails
    the task before anything is created. API errors (bad token, quota exhausted, ...) fail with the
    API's code and message in RV(failure). Rate limiting (429) is retried by the C(hcloud) library.
  - Safe to retry after a lost answer. A create whose answer is lost (connection dropped or timed
    out, or a retry that meets C(uniqueness_error) because the first attempt did land) is never
    blindly repeated - the server is looked up by name; if it exists with the fleet's labels the
    module carries on with it (RV(recovered)), if it does not the create is posted again (at most
    three attempts).
  - A server is C(locked) (HTTP 423) while another action runs on it - for example the
    C(apply_firewall) action Hetzner starts on every new server that a firewall's label selector
    matches. Protection changes and deletes wait those actions out, at most O(lock_timeout)
    seconds, and then fail naming the action they waited for.
options:
  servers:
    description: Every server of the fleet, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Server name (a lowercase hostname), unique in the project.
        type: str
        required: true
      labels:
        description: Labels of this server (added to O(labels) and O(selector_labels)).
        type: dict
        default: {}
      ipv4:
        description:
          - An existing Primary IP of type C(ipv4) (its ID, or its name) that the server gets as its
            public IPv4 when it is created (C(public_net.ipv4) of the create request). Create it
            first with C(auto_delete=false), for example with M(hetzner.hcloud.primary_ip), and the
            address outlives the server - a replacement server created with the same Primary IP
            keeps the address.
          - Before the first create, every named Primary IP is checked - it must exist, be of type
            C(ipv4), be unassigned, lie in O(location) and be named for one server only -
            otherwise the task fails before anything is created (RV(failure.code) C(primary_ip_unusable)).
          - An existing server is never recreated or reassigned; one whose public IPv4 is not this
            Primary IP is reported in RV(drift) (field C(ipv4)).
          - Omitted, Hetzner creates a Primary IP for the server that is deleted with it.
        type: str
  selector_labels:
    description:
      - Labels that mark a server as a member of this fleet (for example C(cluster=honeydue)); every
        server is created with them, and servers carrying them but not listed in O(servers) are surplus.
    type: dict
    required: true
  labels:
    description: Labels every server gets (for example C(env=production)).
    type: dict
    default: {}
  server_type:
    description: Server type name.
    type: str
    default: cx33
  image:
    description: System image name (matched to the server type's architecture).
    type: str
    default: ubuntu-24.04
  location:
    description: Location name.
    type: str
    default: nbg1
  ssh_keys:
    description: Names of SSH keys (already uploaded) for root; the cloud-init user data adds the deploy user's.
    type: list
    elements: str
    default: []
  placement_group:
    description: Name of an existing placement group (C(spread)) the servers join.
    type: str
  networks:
    description: Names of existing private networks the servers are attached to at creation.
    type: list
    elements: str
    default: []
  user_data:
    description: Cloud-init user data for new servers (not compared for existing ones).
    type: str
  protection:
    description: Turn delete and rebuild protection on (on new servers, and again on existing ones).
    type: bool
    default: true
  allow_delete:
    description: Allow deleting surplus servers that are confirmed removed from K3s.
    type: bool
    default: false
  confirmed_removed:
    description: Names of surplus servers confirmed drained and removed from K3s (may be deleted with O(allow_delete)).
    type: list
    elements: str
    default: []
  removed_label:
    description: A server labelled C(<removed_label>=true) counts as confirmed removed from K3s.
    type: str
    default: k3s-removed
  wait_timeout:
    description: Seconds to wait for all the actions of one step (create, protect, delete) together.
    type: int
    default: 900
  poll_interval:
    description: Seconds between polls of the running actions (one request polls all of them).
    type: float
    default: 1.0
  lock_timeout:
    description:
      - Seconds to wait, per server, for the actions that lock it (HTTP 423 C(locked)) before a
        protection change or delete gives up.
    type: int
    default: 300
requirements:
  - hcloud >= 2.0 (Python library)
attributes:
  check_mode:
    details: Makes only read requests and reports what would be created, protected and deleted.
  diff_mode:
    details: The fleet's servers by name, before and after (type, image, location, labels, placement group, networks).
notes:
  - Check mode makes only read requests (the fleet and the catalog lookups), so an unknown server
    type or a wrong token also fails in check mode.
extends_documentation_fragment:
  - honeydue.infra.hcloud
  - honeydue.infra.attributes
"""

EXAMPLES = r"""
- name: Three K3s servers in nbg1
  honeydue.infra.hcloud_fleet:
    servers:
      - {name: hetzner1, labels: {role: k3s-server}}
      - {name: hetzner2, labels: {role: k3s-server}}
      - {name: hetzner3, labels: {role: k3s-server}}
    selector_labels: {cluster: honeydue}
    labels: {env: production}
    server_type: cx33
    image: ubuntu-24.04
    location: nbg1
    ssh_keys: [ops]
    placement_group: honeydue-spread
    user_data: "{{ lookup('ansible.builtin.template', 'cloud-init.yml.j2') }}"
  register: fleet

- name: Each server with its own Primary IP (created beforehand, auto_delete false), kept across replacements
  honeydue.infra.hcloud_fleet:
    servers:
      - {name: hetzner1, labels: {role: k3s-server}, ipv4: hetzner1-ipv4}
      - {name: hetzner2, labels: {role: k3s-server}, ipv4: hetzner2-ipv4}
    selector_labels: {cluster: honeydue}
    location: nbg1

- name: Scale in, deleting hetzner4 (drained and deleted from K3s first)
  honeydue.infra.hcloud_fleet:
    servers: "{{ fleet_servers[:3] }}"
    selector_labels: {cluster: honeydue}
    allow_delete: true
    confirmed_removed: [hetzner4]
"""

RETURN = r"""
servers:
  description: The fleet's servers after the task (in check mode, as they are now), in the order of O(servers).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Server name.
      type: str
    id:
      description: Server ID.
      type: int
    status:
      description: Server status (C(running), C(initializing), C(off), ...).
      type: str
    server_type:
      description: Server type name.
      type: str
    image:
      description: Image name (null when the server was created from a snapshot or the image was deleted).
      type: str
    location:
      description: Location name.
      type: str
    labels:
      description: The server's labels.
      type: dict
    placement_group:
      description: Placement group name, or null.
      type: str
    networks:
      description: Names of the private networks the server is attached to.
      type: list
      elements: str
    protection:
      description: Delete and rebuild protection, as C({delete, rebuild}).
      type: dict
    ipv4:
      description: Public IPv4 address, or null.
      type: str
    ipv6:
      description: Public IPv6 network, or null.
      type: str
    primary_ipv4:
      description: ID of the Primary IP that is the server's public IPv4, or null.
      type: int
    private_ipv4:
      description: Address on the first private network, or null.
      type: str
  sample:
    - {name: hetzner1, id: 42, status: running, server_type: cx33, image: ubuntu-24.04, location: nbg1,
       labels: {cluster: honeydue, role: k3s-server, env: production}, placement_group: honeydue-spread,
       networks: [], protection: {delete: true, rebuild: true}, ipv4: 198.51.100.7,
       ipv6: "2001:db8:1::/64", primary_ipv4: 4711, private_ipv4: null}
created:
  description: Names of the servers created (in check mode, that would be created).
  returned: always
  type: list
  elements: str
deleted:
  description: Names of the surplus servers deleted (would be, in check mode).
  returned: always
  type: list
  elements: str
protected:
  description: Names of existing servers whose protection was turned back on.
  returned: always
  type: list
  elements: str
surplus:
  description: Servers of the fleet that are not in O(servers).
  returned: always
  type: list
  elements: str
drift:
  description: Per server, the attributes that differ from the request (never changed by the module).
  returned: always
  type: dict
  sample: {hetzner2: {server_type: {expected: cx33, actual: cx43}}}
recovered:
  description:
    - Creates whose answer was lost but which had landed; the module found the server by name and
      carried on with it instead of creating it again.
  returned: always
  type: list
  elements: dict
  sample: [{name: hetzner2, after: connection lost (ConnectionError)}]
failure:
  description: The API's (or the module's) error code and message when the task failed.
  returned: failure
  type: dict
  sample: {code: unauthorized, message: unable to authenticate}
  contains:
    code:
      description:
        - The Hetzner Cloud API error code (for example C(unauthorized), C(resource_limit_exceeded)), or the
          module's own - C(invalid_input), C(name_taken), C(scale_in_refused), C(locked), C(timeout),
          C(create_lost), C(uniqueness_error), C(client_error), C(connection_error).
      type: str
      returned: always
      sample: name_taken
    message:
      description: What went wrong, in words.
      type: str
      returned: always
    details:
      description: The API error's C(details) (for example the invalid fields).
      type: dict
      returned: on an API error
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.honeydue.infra.plugins.module_utils._hcloud_fleet import (
    FleetError, desired_servers, diff, in_fleet, lock_holders, plan, primary_ip_problems, selector, server_view,
    taken_names)

try:
    import hcloud
    import requests
    from hcloud.images import Image
    from hcloud.locations import Location
    from hcloud.primary_ips import PrimaryIP
    from hcloud.servers import ServerCreatePublicNetwork
    HCLOUD_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the module
    HCLOUD_IMPORT_ERROR = traceback.format_exc()


# Attempts at one create whose answer keeps getting lost before giving up.
CREATE_ATTEMPTS = 3


class Fleet:
    def __init__(self, module):
        self.module = module
        p = module.params
        self.client = hcloud.Client(token=p["api_token"], api_endpoint=p["api_endpoint"],
                                    application_name="honeydue.infra.hcloud_fleet", poll_interval=p["poll_interval"])
        self.selector = selector(p["selector_labels"])
        self.spec = {"server_type": p["server_type"], "image": p["image"], "location": p["location"],
                     "placement_group": p["placement_group"], "networks": sorted(p["networks"])}
        self.result = {"changed": False, "servers": [], "created": [], "deleted": [], "protected": [],
                       "surplus": [], "drift": {}, "recovered": []}

    # -- reading -----------------------------------------------------------------------------
    def existing(self):
        self._networks = {n.id: n.name for n in self.client.networks.get_all()} if self.spec["networks"] else {}
        servers = self.client.servers.get_all(label_selector=self.selector)
        return {s.name: s for s in servers}

    def view(self, server):
        pg = server.placement_group
        private = list(server.private_net or [])
        return server_view(
            server.name, sid=server.id, status=server.status, server_type=server.server_type.name,
            image=server.image.name if server.image is not None else None,
            location=server.location.name, labels=server.labels or {},
            placement_group=pg.name if pg is not None else None,
            networks=[self._networks.get(p.network.id, str(p.network.id)) for p in private],
            protection=server.protection,
            ipv4=server.public_net.ipv4.ip if server.public_net and server.public_net.ipv4 else None,
            ipv6=server.public_net.ipv6.ip if server.public_net and server.public_net.ipv6 else None,
            private_ipv4=private[0].ip if private else None,
            primary_ipv4=getattr(getattr(server.public_net, "primary_ipv4", None), "id", None))

    def primary_ips(self, desired):
        """The Primary IPs the servers name (``ipv4``): reference -> facts, or None when there is none."""
        found = {}
        for ref in dict.fromkeys(d["ipv4"] for d in desired if d.get("ipv4") is not None):
            try:
                pip = (self.client.primary_ips.get_by_id(ref) if isinstance(ref, int)
                       else self.client.primary_ips.get_by_name(ref))
            except hcloud.APIException as exc:
                if exc.code != "not_found":
                    raise
                pip = None
            location = getattr(pip, "location", None) if pip is not None else None
            found[ref] = None if pip is None else {
                "id": pip.id, "name": pip.name, "type": pip.type, "assignee_id": pip.assignee_id,
                "location": location.name if location is not None else None}
        return found

    def resolve(self):
        """Look every referenced resource up by name; an unknown one fails before any create."""
        p, c = self.module.params, self.client
        stype = c.server_types.get_by_name(p["server_type"])
        if stype is None:
            raise FleetError("invalid_input", f"unknown server type {p['server_type']!r}")
        if c.locations.get_by_name(p["location"]) is None:
            raise FleetError("invalid_input", f"unknown location {p['location']!r}")
        image = c.images.get_by_name_and_architecture(p["image"], stype.architecture)
        if image is None:
            raise FleetError("invalid_input", f"unknown image {p['image']!r} for architecture {stype.architecture}")
        refs = {"server_type": stype, "image": image, "ssh_keys": [], "networks": [], "placement_group": None}
        for name in p["ssh_keys"]:
            refs["ssh_keys"].append(self._ref(c.ssh_keys, "SSH key", name))
        for name in p["networks"]:
            refs["networks"].append(self._ref(c.networks, "network", name))
        if p["placement_group"]:
            refs["placement_group"] = self._ref(c.placement_groups, "placement group", p["placement_group"])
        return refs

    def _ref(self, client, kind, name):
        """A resource by name. In check mode it may be missing: an earlier task would have created it."""
        found = client.get_by_name(name)
        if found is None and not self.module.check_mode:
            raise FleetError("invalid_input", f"unknown {kind} {name!r}")
        return found

    # -- actions -----------------------------------------------------------------------------
    def wait(self, action_ids, timeout=None):
        """Wait for every action together: one GET /actions?id=..&id=.. per poll (50 at a time)."""
        pending = list(dict.fromkeys(action_ids))
        timeout = self.module.params["wait_timeout"] if timeout is None else timeout
        deadline = time.monotonic() + timeout
        errors = []
        while pending:
            still = []
            for i in range(0, len(pending), 50):
                chunk = pending[i:i + 50]
                resp = self.client.request("GET", "/actions", params={"id": chunk, "per_page": 50})
                seen = set()
                for action in resp["actions"]:
                    seen.add(action["id"])
                    if action["status"] == "running":
                        still.append(action["id"])
                    elif action["status"] == "error":
                        err = action.get("error") or {}
                        what = f"{action['command']} (action {action['id']})"
                        errors.append({"code": err.get("code", "action_failed"),
                                       "message": f"{what}: {err.get('message', '')}"})
                still.extend(a for a in chunk if a not in seen)
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    raise FleetError("timeout", f"actions {pending} still running after {timeout} s")
                time.sleep(self.module.params["poll_interval"])
        if errors:
            raise FleetError(errors[0]["code"], "; ".join(e["message"] for e in errors))

    def running_actions(self, server_id):
        """The actions running on one server now (what locks it)."""
        resp = self.client.request("GET", f"/servers/{server_id}/actions", params={"status": "running"})
        return resp.get("actions") or []

    def create(self, entries, refs):
        """Post every create, then wait for all their actions; a failed post stops further posts."""
        actions, failure = [], None
        for entry in entries:
            try:
                actions.extend(self._create_one(entry, refs))
            except (hcloud.APIException, FleetError) as exc:
                failure = exc
                break
            self.result["created"].append(entry["name"])
            self.result["changed"] = True
        self.wait(actions)
        if failure is not None:
            raise failure

    def _create_one(self, entry, refs):
        """POST one create; after a lost answer, look the server up by name before trying again.

        Returns the IDs of the actions to wait for.
        """
        p = self.module.params
        lost = None
        pip_id = refs.get("primary_ids", {}).get(entry.get("ipv4"))
        public_net = ServerCreatePublicNetwork(ipv4=PrimaryIP(id=pip_id)) if pip_id is not None else None
        for _attempt in range(CREATE_ATTEMPTS):
            try:
                resp = self.client.servers.create(
                    entry["name"], server_type=refs["server_type"], image=Image(id=refs["image"].id),
                    location=Location(name=p["location"]), ssh_keys=refs["ssh_keys"] or None,
                    placement_group=refs["placement_group"], networks=refs["networks"] or None,
                    user_data=p["user_data"], labels=entry["labels"], start_after_create=True,
                    public_net=public_net)
                return [resp.action.id] + [a.id for a in resp.next_actions or []]
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                lost = f"connection lost ({type(exc).__name__})"
            except hcloud.APIException as exc:
                if exc.code != "uniqueness_error":
                    raise
                # hcloud retries a timed-out POST; the first attempt may have landed.
                lost = "uniqueness_error on a repeated create"
            found = self.client.servers.get_by_name(entry["name"])
            if found is not None:
                if not in_fleet(found.labels, p["selector_labels"]):
                    raise FleetError("name_taken", f"{entry['name']} is used by a server outside the fleet "
                                                   f"(labels {found.labels})")
                self.result["recovered"].append({"name": entry["name"], "after": lost})
                return [a["id"] for a in self.running_actions(found.id)]
            if lost.startswith("uniqueness_error"):
                raise FleetError("uniqueness_error", f"{entry['name']}: the API says the name is used, "
                                                     "but no server has it")
        raise FleetError("create_lost", f"{entry['name']}: {CREATE_ATTEMPTS} create attempts lost their "
                                        f"answer and none landed ({lost})")

    def check_names(self, entries):
        """Fail before the first create if a wanted name is used by a server outside the fleet."""
        found = {}
        for entry in entries:
            server = self.client.servers.get_by_name(entry["name"])
            if server is not None:
                found[entry["name"]] = server.labels or {}
        taken = taken_names([e["name"] for e in entries], found, self.module.params["selector_labels"])
        if taken:
            raise FleetError("name_taken", (
                f"{', '.join(taken)} {'is' if len(taken) == 1 else 'are'} already used by a server outside the "
                f"fleet ({self.selector}); server names are unique per project. Rename or remove that server, "
                "or choose other names. Nothing was changed"))

    def unlocked(self, server, start):
        """``start()`` an action on ``server``, waiting out 423 ``locked`` (another action runs on it)."""
        timeout = self.module.params["lock_timeout"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                return start()
            except hcloud.APIException as exc:
                if exc.code != "locked":
                    raise
            holders = self.running_actions(server.id)
            left = deadline - time.monotonic()
            gave_up = FleetError("locked", f"{server.name} is still locked by {lock_holders(holders)} after "
                                           f"{timeout} s (lock_timeout); nothing else was started on it")
            if left <= 0:
                raise gave_up
            if not holders:
                time.sleep(min(self.module.params["poll_interval"], left))
                continue
            try:
                self.wait([a["id"] for a in holders], timeout=left)
            except FleetError as exc:
                if exc.code == "timeout":
                    raise gave_up from None
                raise

    def protect(self, names, servers, on):
        actions = [self.unlocked(servers[n], lambda n=n: servers[n].change_protection(delete=on, rebuild=on)).id
                   for n in names]
        self.wait(actions)

    def delete(self, names, servers):
        unprotect = [n for n in names if servers[n].protection.get("delete") or servers[n].protection.get("rebuild")]
        self.protect(unprotect, servers, False)
        actions = []
        for name in names:
            actions.append(self.unlocked(servers[name], servers[name].delete).id)
            self.result["deleted"].append(name)
            self.result["changed"] = True
        self.wait(actions)

    # -- the task ----------------------------------------------------------------------------
    def run(self):
        p = self.module.params
        desired = desired_servers(p["servers"], p["labels"], p["selector_labels"])
        servers = self.existing()
        views = [self.view(s) for s in servers.values()]
        pips = self.primary_ips(desired)
        primary_ids = {ref: (pip["id"] if pip else None) for ref, pip in pips.items()}
        the_plan = plan(desired, views, self.spec, protection=p["protection"], allow_delete=p["allow_delete"],
                        confirmed_removed=p["confirmed_removed"], removed_label=p["removed_label"],
                        primary_ids=primary_ids)
        self.result.update(surplus=the_plan.surplus, drift=the_plan.drift)
        for name, fields in the_plan.drift.items():
            self.module.warn(f"{name} differs from the request (reported, not changed): " +
                             ", ".join(f"{f} is {v['actual']!r}, expected {v['expected']!r}"
                                       for f, v in fields.items()))
        refs = None
        if the_plan.create:
            refs = self.resolve()
            self.check_names(the_plan.create)
            # In check mode a Primary IP may be missing: an earlier task would have created it.
            checked = [e for e in the_plan.create if not self.module.check_mode or pips.get(e["ipv4"]) is not None]
            problems = primary_ip_problems(checked, pips, p["location"])
            if problems:
                raise FleetError("primary_ip_unusable", "; ".join(problems) + ". Nothing was changed")
            refs["primary_ids"] = primary_ids
        if self.module._diff:
            self.result["diff"] = diff(views, the_plan, self.spec)
        if self.module.check_mode:
            self.result.update(changed=the_plan.changed, created=[e["name"] for e in the_plan.create],
                               deleted=list(the_plan.delete), protected=list(the_plan.protect))
            self.result["servers"] = self._ordered(desired, {v["name"]: v for v in views})
            return self.result
        if the_plan.create:
            self.create(the_plan.create, refs)
        if the_plan.delete:
            self.delete(the_plan.delete, servers)
        servers = self.existing()
        todo = [n for n in self.result["created"] if n in servers] + list(the_plan.protect)
        if p["protection"] and todo:
            self.protect(todo, servers, True)
            self.result["protected"] = list(the_plan.protect)
            self.result["changed"] = True
            servers = self.existing()
        self.result["servers"] = self._ordered(desired, {n: self.view(s) for n, s in servers.items()})
        return self.result

    @staticmethod
    def _ordered(desired, views):
        return [views[d["name"]] for d in desired if d["name"] in views]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            api_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["HCLOUD_TOKEN"])),
            api_endpoint=dict(type="str", default="https://api.hetzner.cloud/v1",
                              fallback=(env_fallback, ["HCLOUD_ENDPOINT"])),
            servers=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                labels=dict(type="dict", default={}),
                ipv4=dict(type="str"),
            )),
            selector_labels=dict(type="dict", required=True),
            labels=dict(type="dict", default={}),
            server_type=dict(type="str", default="cx33"),
            image=dict(type="str", default="ubuntu-24.04"),
            location=dict(type="str", default="nbg1"),
            ssh_keys=dict(type="list", elements="str", default=[], no_log=False),
            placement_group=dict(type="str"),
            networks=dict(type="list", elements="str", default=[]),
            user_data=dict(type="str"),
            protection=dict(type="bool", default=True),
            allow_delete=dict(type="bool", default=False),
            confirmed_removed=dict(type="list", elements="str", default=[]),
            removed_label=dict(type="str", default="k3s-removed"),
            wait_timeout=dict(type="int", default=900),
            lock_timeout=dict(type="int", default=300),
            poll_interval=dict(type="float", default=1.0),
        ),
        supports_check_mode=True,
    )
    if HCLOUD_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("hcloud"), exception=HCLOUD_IMPORT_ERROR)
    fleet = None
    try:
        fleet = Fleet(module)
        result = fleet.run()
    except FleetError as exc:
        partial = fleet.result if fleet is not None else {}
        module.fail_json(msg=f"{exc.code}: {exc.message}", failure={"code": exc.code, "message": exc.message},
                         **partial)
    except hcloud.APIException as exc:
        partial = fleet.result if fleet is not None else {}
        module.fail_json(msg=f"Hetzner Cloud API error {exc.code}: {exc.message}",
                         failure={"code": exc.code, "message": exc.message, "details": exc.details}, **partial)
    except hcloud.HCloudException as exc:
        partial = fleet.result if fleet is not None else {}
        module.fail_json(msg=f"Hetzner Cloud client error: {exc}",
                         failure={"code": "client_error", "message": str(exc)},
                         **partial)
    except requests.exceptions.RequestException as exc:
        # A read or an action whose answer was lost; what was already applied is in the result,
        # and a re-run converges from the API's state.
        partial = fleet.result if fleet is not None else {}
        module.fail_json(msg=f"Hetzner Cloud API unreachable or the answer was lost: {exc}",
                         failure={"code": "connection_error", "message": str(exc)}, **partial)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
