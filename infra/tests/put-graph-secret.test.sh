#!/usr/bin/env bash
# Tests infra/put-graph-secret.sh against a local moto_server (Secrets Manager
# and CloudFormation emulator). Needs: moto_server, python3 with boto3,
# openssl, jq; uses strace when present to prove that no credential reaches
# any process's argv. Prints "N passed, N failed" and exits non-zero on failure.
#
#   bash infra/tests/put-graph-secret.test.sh

# ok() and ko() always succeed, so "check && ok || ko" is a plain if/else here;
# the single-quoted test secret is meant literally.
# shellcheck disable=SC2015,SC2016

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
S=$here/../put-graph-secret.sh
PY=$(python3 -c 'import sys; print(sys.executable)')
for tool in moto_server openssl jq; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
"$PY" -c 'import boto3' || { echo "missing boto3" >&2; exit 2; }

work=$(mktemp -d) || { echo "cannot create a temporary directory" >&2; exit 2; }
moto_pid=
cleanup() {
  [[ -z $moto_pid ]] || kill "$moto_pid" 2>/dev/null
  rm -rf -- "$work"
}
trap cleanup EXIT
cd "$work" || exit 2

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >moto.log 2>&1 &
moto_pid=$!
EP=http://127.0.0.1:$port
for _ in $(seq 50); do
  curl -s -o /dev/null "$EP/moto-api/" && break
  sleep 0.2
done

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-west-1
unset AWS_PROFILE AWS_SESSION_TOKEN
# Only the temporary directories of this run are checked at the end.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"

pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
ko() { echo "FAIL - $*"; fail=$((fail + 1)); }

boto() { "$PY" - "$EP" "$@"; }
ARN=$(boto <<'PY'
import boto3, sys
sm = boto3.client("secretsmanager", endpoint_url=sys.argv[1])
print(sm.create_secret(Name="graph-credentials-test", Description="test")["ARN"])
PY
)
get() { boto "$ARN" <<'PY'
import boto3, sys
print(boto3.client("secretsmanager", endpoint_url=sys.argv[1]).get_secret_value(SecretId=sys.argv[2])["SecretString"])
PY
}
versions() { boto "$ARN" <<'PY'
import boto3, sys
print(len(boto3.client("secretsmanager", endpoint_url=sys.argv[1]).list_secret_version_ids(SecretId=sys.argv[2])["Versions"]))
PY
}

T=11111111-2222-3333-4444-555555555555
C=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
SECRET='s3cr~et.VALUE_with-"quotes"\and$dollar'

openssl genrsa -traditional -out key-pkcs1.pem 2048 2>/dev/null
openssl req -x509 -new -key key-pkcs1.pem -subj "/CN=put-graph-secret-test" -days 30 -out cert.pem 2>/dev/null
openssl genrsa -out other-key.pem 2048 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in key-pkcs1.pem -out key-pkcs8.pem

# A PATH without the AWS CLI (boto3 path) and one without python3 (jq path).
mkdir -p noaws nopython
ln -s "$PY" noaws/python3
for f in /usr/bin/* /bin/*; do
  b=${f##*/}
  case $b in python* | aws* | pip*) continue ;; esac
  [[ -e nopython/$b ]] || ln -s "$f" "nopython/$b"
  [[ -e noaws/$b ]] || ln -s "$f" "noaws/$b"
done
aws_bin=$(command -v aws || true)
if [[ -n $aws_bin ]]; then
  # The AWS CLI may itself be a Python script; then run it with this python.
  if head -1 "$aws_bin" | grep -q python; then
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$PY" "$aws_bin" >nopython/aws
  else
    printf '#!/bin/sh\nexec %s "$@"\n' "$aws_bin" >nopython/aws
  fi
  chmod +x nopython/aws
fi

# 1. client secret on stdin
out=$(printf '%s\n' "$SECRET" | "$S" --secret-id "$ARN" --tenant-id $T --client-id $C --client-secret-stdin --endpoint-url "$EP" 2>&1)
rc=$?
[[ $rc == 0 ]] && ok "client secret from stdin" || ko "client secret from stdin rc=$rc: $out"
[[ $out != *'s3cr~et'* ]] && ok "output does not contain the client secret" || ko "client secret printed"
"$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); assert d == {"tenantId": sys.argv[2], "clientId": sys.argv[3], "clientSecret": sys.argv[4]}, d' \
  "$(get)" $T $C "$SECRET" && ok "round trip: clientSecret form" || ko "round trip: clientSecret form"

# 2. certificate + PKCS#1 key (converted to PKCS#8); argv watched
runner=()
command -v strace >/dev/null && runner=(strace -f -qq -s 100000 -e trace=execve -o "$work/execve.log")
${runner[@]+"${runner[@]}"} "$S" --secret-id "$ARN" --tenant-id contoso.onmicrosoft.com --client-id $C \
  --certificate cert.pem --private-key key-pkcs1.pem --endpoint-url "$EP" >out2 2>&1
rc=$?
[[ $rc == 0 ]] && ok "certificate + PKCS#1 key" || ko "certificate + PKCS#1 key rc=$rc: $(cat out2)"
grep -q 'converted the private key from PKCS#1 to PKCS#8' out2 && ok "PKCS#1 conversion reported" || ko "no conversion note"
if [[ ${#runner[@]} -gt 0 ]]; then
  if grep -qF -- "$(sed -n 2p key-pkcs1.pem)" execve.log || grep -qF -- "$(sed -n 2p key-pkcs8.pem)" execve.log ||
     grep -qF -- "$(sed -n 2p cert.pem)" execve.log || grep -q '"MII' execve.log; then
    ko "key or certificate material in a process argv"
  else
    ok "no credential in any argv ($(grep -c execve execve.log) processes)"
  fi
else
  echo "skip - strace not installed: argv not inspected"
fi
boto "$(get)" <<'PY' && ok "round trip: certificate form, PKCS#8, same key" || ko "round trip: certificate form"
import json, subprocess, sys
d = json.loads(sys.argv[2])
assert set(d) == {"tenantId", "clientId", "certificate", "privateKey"}, sorted(d)
assert d["tenantId"] == "contoso.onmicrosoft.com"
assert d["privateKey"].startswith("-----BEGIN PRIVATE KEY-----")
assert d["certificate"] == open("cert.pem").read()
pub = lambda pem: subprocess.run(["openssl", "pkey", "-pubout"], input=pem.encode(), capture_output=True).stdout
assert pub(d["privateKey"]) == pub(open("key-pkcs1.pem").read()) != b""
PY

# 3. --file PATH through boto3 (no AWS CLI on PATH)
printf '{"tenantId":"%s","clientId":"%s","clientSecret":"file-secret-ABC.123"}' $T $C >creds.json
out=$(PATH=$work/noaws "$S" --secret-id "$ARN" --file creds.json --endpoint-url "$EP" --region eu-west-1 2>&1)
rc=$?
(PATH=$work/noaws command -v aws >/dev/null) && ko "aws still reachable" || true
[[ $rc == 0 ]] && ok "--file PATH via boto3" || ko "--file PATH via boto3 rc=$rc: $out"
[[ "$(get)" == "$(cat creds.json)" ]] && ok "round trip: --file stored byte for byte" || ko "round trip: --file"

# 4. --file - (stdin) with a PKCS#1 key inside, validated by jq (no python3 on PATH)
if [[ -x nopython/aws ]]; then
  "$PY" -c 'import json, sys; print(json.dumps({"tenantId": sys.argv[1], "clientId": sys.argv[2], "certificate": open("cert.pem").read(), "privateKey": open("key-pkcs1.pem").read()}))' $T $C >pkcs1.json
  out=$(PATH=$work/nopython "$S" --secret-id "$ARN" --file - --endpoint-url "$EP" <pkcs1.json 2>&1)
  rc=$?
  (PATH=$work/nopython command -v python3 >/dev/null) && ko "python3 still reachable" || true
  [[ $rc == 0 ]] && ok "--file - with jq validation and PKCS#1 conversion" || ko "jq path rc=$rc: $out"
  "$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["privateKey"].startswith("-----BEGIN PRIVATE KEY-----") and d["certificate"] == open("cert.pem").read()' "$(get)" &&
    ok "round trip: jq path" || ko "round trip: jq path"
else
  echo "skip - no AWS CLI: jq path (which needs it) not tested"
fi

# 5. --stack NAME, both clients; secret typed at a terminal prompt
boto "$ARN" <<'PY'
import boto3, json, sys
cfn = boto3.client("cloudformation", endpoint_url=sys.argv[1])
cfn.create_stack(StackName="passcode-test", TemplateBody=json.dumps({
    "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {"SecretArn": {"Value": sys.argv[2]}}}))
PY
boto "$S" $T $C <<'PY' && ok "--stack + prompt without echo (AWS CLI or boto3)" || ko "--stack + prompt"
import json, os, pty, select, sys, time, boto3
ep, script, tenant, client = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", script, "--stack", "passcode-test", "--tenant-id", tenant,
                       "--client-id", client, "--client-secret-stdin", "--endpoint-url", ep])
buf, sent, end = b"", False, time.time() + 60
while time.time() < end:
    if not select.select([fd], [], [], 0.2)[0]:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    if not sent and b"input hidden" in buf:
        os.write(fd, b"typed-at-the-prompt!\n")
        sent = True
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, buf.decode()
assert b"typed-at-the-prompt" not in buf, "secret echoed"
sm = boto3.client("secretsmanager", endpoint_url=ep)
arn = boto3.client("cloudformation", endpoint_url=ep).describe_stacks(StackName="passcode-test")["Stacks"][0]["Outputs"][0]["OutputValue"]
assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["clientSecret"] == "typed-at-the-prompt!"
PY
out=$(PATH=$work/noaws "$S" --stack passcode-test --file creds.json --endpoint-url "$EP" 2>&1) &&
  ok "--stack via boto3" || ko "--stack via boto3: $out"

# 6. rejected documents: non-zero exit, nothing written, nothing echoed
pem() { "$PY" -c 'import json, sys; print(json.dumps("".join(open(p).read() for p in sys.argv[1:])))' "$@"; }
for tool in python3 jq; do
  if [[ $tool == jq ]]; then
    [[ -x nopython/aws ]] || continue
    P=$work/nopython
  else
    P=$PATH
  fi
  before=$(versions)
  check() { # description, expected message part, document
    out=$(printf '%s' "$3" | PATH=$P "$S" --secret-id "$ARN" --file - --endpoint-url "$EP" 2>&1)
    local rc=$?
    if [[ $rc != 0 && $out == *"$2"* && $out != *LEAKME* ]]; then ok "[$tool] rejects $1"; else ko "[$tool] $1: rc=$rc out=$out"; fi
  }
  check "invalid JSON" "not valid JSON" '{"tenantId": LEAKME'
  check "a JSON array" "JSON object" '["LEAKME"]'
  check "mixed forms" "keys must be exactly" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"clientSecret\":\"LEAKME\",\"certificate\":\"x\"}"
  check "a missing clientSecret" "keys must be exactly" "{\"tenantId\":\"$T\",\"clientId\":\"$C\"}"
  check "a blank clientSecret" "clientSecret must be a non-empty string" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"clientSecret\":\"  \"}"
  check "a number" "tenantId must be a non-empty string" "{\"tenantId\":5,\"clientId\":\"$C\",\"clientSecret\":\"LEAKME\"}"
  check "a bad clientId" "clientId must be" "{\"tenantId\":\"$T\",\"clientId\":\"LEAKME\",\"clientSecret\":\"abcdefgh\"}"
  check "a bad tenantId" "tenantId must be" "{\"tenantId\":\"LEAKME\",\"clientId\":\"$C\",\"clientSecret\":\"abcdefgh\"}"
  check "the secret ID instead of its value" "secret ID" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"clientSecret\":\"$T\"}"
  check "whitespace around the secret" "whitespace" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"clientSecret\":\"LEAKME \"}"
  check "a key that is not PEM" "PKCS#8" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"certificate\":$(pem cert.pem),\"privateKey\":\"LEAKME\"}"
  check "two certificates" "exactly one" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"certificate\":$(pem cert.pem cert.pem),\"privateKey\":$(pem key-pkcs8.pem)}"
  check "a key of another certificate" "does not belong" "{\"tenantId\":\"$T\",\"clientId\":\"$C\",\"certificate\":$(pem cert.pem),\"privateKey\":$(pem other-key.pem)}"
  [[ "$(versions)" == "$before" ]] && ok "[$tool] rejected documents wrote nothing" || ko "[$tool] a rejected document was written"
done

# 7. arguments
out=$("$S" --secret-id "$ARN" --tenant-id $T --client-id $C --client-secret LEAKME 2>&1)
[[ $? != 0 && $out == *"never as an argument"* && $out != *LEAKME* ]] && ok "refuses a client secret as an argument" || ko "--client-secret: $out"
out=$("$S" --secret-id 2>&1)
[[ $? != 0 && $out == *"needs a value"* ]] && ok "reports a missing option value" || ko "missing value: $out"
out=$("$S" --help)
[[ $? == 0 && $out == Usage:* ]] && ok "--help" || ko "--help"
out=$(printf 'x\n' | "$S" --validate-only --tenant-id $T --client-id $C --client-secret-stdin 2>&1)
[[ $? == 0 && $out == *"nothing written"* ]] && ok "--validate-only needs no secret and writes nothing" || ko "--validate-only: $out"
openssl pkcs8 -topk8 -v2 aes256 -passout pass:pw -in key-pkcs1.pem -out encrypted-key.pem 2>/dev/null
out=$("$S" --validate-only --tenant-id $T --client-id $C --certificate cert.pem --private-key encrypted-key.pem 2>&1)
[[ $? != 0 && $out == *encrypted* ]] && ok "rejects an encrypted key" || ko "encrypted key: $out"

# 8. nothing left behind
left=$(find "$TMPDIR" -mindepth 1 | wc -l)
[[ $left == 0 ]] && ok "no temporary files left behind" || ko "$left temporary files left"

echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
