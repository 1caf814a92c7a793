"""Plain Matrix client-server API calls for deploy/local/matrix.sh (Python
standard library only): register a user, create a room, print what a plain
client receives, post a message, add a Matrix user to the draft directory. This is the
"plain client" side of the demo; end-to-end decryption is done by
`varde-bridge read-room`, which has a real E2EE implementation.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request


def call(base, method, path, token=None, body=None):
    req = urllib.request.Request(
        base.rstrip("/") + "/_matrix/client/v3/" + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def register(base, user, password):
    """Prints: user_id access_token (registers, or logs in if taken)."""
    body = {"username": user, "password": password,
            "auth": {"type": "m.login.dummy"}, "inhibit_login": False}
    status, answer = call(base, "POST", "register", body=body)
    if status == 401 and "session" in answer:
        body["auth"]["session"] = answer["session"]
        status, answer = call(base, "POST", "register", body=body)
    if status == 400 and answer.get("errcode") == "M_USER_IN_USE":
        status, answer = call(base, "POST", "login", body={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password})
    if status != 200:
        sys.exit(f"register {user}: HTTP {status} {answer}")
    print(answer["user_id"], answer["access_token"])


def create_room(base, token, name, encrypted, *invite):
    body = {"name": name, "preset": "private_chat", "invite": list(invite)}
    if encrypted == "encrypted":
        body["initial_state"] = [{"type": "m.room.encryption", "state_key": "",
                                  "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
    status, answer = call(base, "POST", "createRoom", token, body)
    if status != 200:
        sys.exit(f"createRoom: HTTP {status} {answer}")
    print(answer["room_id"])


def show(base, token, room, limit="5"):
    """Prints the newest m.room.message / m.room.encrypted events as a plain
    client receives them."""
    path = "rooms/%s/messages?dir=b&limit=50" % urllib.parse.quote(room)
    status, answer = call(base, "GET", path, token)
    if status != 200:
        sys.exit(f"messages: HTTP {status} {answer}")
    events = [e for e in answer.get("chunk", [])
              if e.get("type") in ("m.room.message", "m.room.encrypted")]
    for e in reversed(events[: int(limit)]):
        c = e.get("content", {})
        print(f"--- {e['event_id']} {e['type']} from {e['sender']}")
        if e["type"] == "m.room.encrypted":
            print(f"    algorithm {c.get('algorithm')}, ciphertext "
                  f"{str(c.get('ciphertext', ''))[:60]}... (a plain client cannot read it)")
        else:
            print(f"    msgtype {c.get('msgtype')}")
            print("    formatted_body " + c.get("formatted_body", "")[:160] + "...")
            for line in c.get("body", "").splitlines():
                print("    " + line)


def send(base, token, room, text):
    """Posts a plain m.text message as the token's user."""
    txn = "demo-" + str(abs(hash((room, text))))
    path = "rooms/%s/send/m.room.message/%s" % (urllib.parse.quote(room), txn)
    status, answer = call(base, "PUT", path, token, {"msgtype": "m.text", "body": text})
    if status != 200:
        sys.exit(f"send: HTTP {status} {answer}")


def add_matrix_user(draft, org, user):
    with open(draft) as f:
        d = json.load(f)
    for o in d["orgs"]:
        if o["id"] == org:
            m = o.setdefault("matrix", {})
            users = m.setdefault("users", [])
            if user not in users:
                users.append(user)
    with open(draft, "w") as f:
        json.dump(d, f, indent=2)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"register": register, "create-room": create_room, "show": show,
     "send": send, "add-matrix-user": add_matrix_user}[cmd](*args)
