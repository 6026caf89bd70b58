#!/usr/bin/env bash
# Write the Microsoft Graph app credentials of the Intune passcode functions
# into their Secrets Manager secret, without the values ever appearing in a
# command line, the shell history or this script's output.
#
# Run with --help for usage.

set -euo pipefail

PROG=${0##*/}

usage() {
  cat <<EOF
Usage:
  $PROG (--secret-id ARN | --stack NAME) --file PATH|-            [AWS options]
  $PROG (--secret-id ARN | --stack NAME) --tenant-id ID --client-id ID
        (--client-secret-stdin | --certificate CERT.pem --private-key KEY.pem)
        [AWS options]

Stores one of these JSON documents as the secret's new current version:
  {"tenantId": "...", "clientId": "...", "clientSecret": "..."}
  {"tenantId": "...", "clientId": "...",
   "certificate": "-----BEGIN CERTIFICATE-----...",
   "privateKey": "-----BEGIN PRIVATE KEY-----..."}      (PKCS#8, unencrypted, RSA)

Where the secret is:
  --secret-id ARN        ARN (or name) of the secret; the stack output SecretArn.
  --stack NAME           Read SecretArn from the outputs of this CloudFormation stack.

Where the credentials come from (one of):
  --file PATH            A JSON file in one of the shapes above. Use - for stdin.
  --tenant-id ID         Directory (tenant) ID: a GUID or a domain such as contoso.onmicrosoft.com.
  --client-id ID         Application (client) ID of the app registration (a GUID).
  --client-secret-stdin  Read the client secret VALUE from stdin (prompted without
                         echo when stdin is a terminal).
  --certificate PATH     PEM file with the app's certificate (public part, one certificate).
  --private-key PATH     PEM file with its RSA private key, PKCS#8 or PKCS#1
                         (PKCS#1 is converted to PKCS#8 with openssl). Not encrypted.

AWS options:
  --region REGION        Region of the secret (default: your AWS configuration).
  --profile NAME         AWS named profile.
  --endpoint-url URL     Alternative endpoint (e.g. a local emulator).

Other:
  --validate-only        Check and assemble the document, but do not write it.
  -h, --help             Show this help.

The document is validated first (python3, or jq if python3 is missing). It is
written with 'aws secretsmanager put-secret-value --secret-string file://...'
from a 0600 file in a private temporary directory that is deleted on exit;
without the AWS CLI, boto3 is used instead. Nothing secret is printed.
EOF
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- arguments --
secret_id='' stack='' file='' tenant_id='' client_id=''
secret_stdin=false cert_path='' key_path=''
region='' profile='' endpoint_url='' validate_only=false

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --secret-id) need_value "$@"; secret_id=$2; shift 2 ;;
    --stack) need_value "$@"; stack=$2; shift 2 ;;
    --file) need_value "$@"; file=$2; shift 2 ;;
    --tenant-id) need_value "$@"; tenant_id=$2; shift 2 ;;
    --client-id) need_value "$@"; client_id=$2; shift 2 ;;
    --client-secret-stdin) secret_stdin=true; shift ;;
    --client-secret|--client-secret=*)
      die "pass the client secret on stdin with --client-secret-stdin, never as an argument" ;;
    --certificate) need_value "$@"; cert_path=$2; shift 2 ;;
    --private-key) need_value "$@"; key_path=$2; shift 2 ;;
    --region) need_value "$@"; region=$2; shift 2 ;;
    --profile) need_value "$@"; profile=$2; shift 2 ;;
    --endpoint-url) need_value "$@"; endpoint_url=$2; shift 2 ;;
    --validate-only) validate_only=true; shift ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

if [[ -n $file ]]; then
  [[ -z $tenant_id$client_id$cert_path$key_path && $secret_stdin == false ]] ||
    die "--file cannot be combined with --tenant-id/--client-id/--client-secret-stdin/--certificate/--private-key"
  mode='file'
else
  [[ -n $tenant_id && -n $client_id ]] || die "give --file, or --tenant-id and --client-id (see --help)"
  if $secret_stdin; then
    [[ -z $cert_path$key_path ]] || die "use either --client-secret-stdin or --certificate/--private-key, not both"
    mode='secret'
  else
    [[ -n $cert_path && -n $key_path ]] ||
      die "give --client-secret-stdin, or both --certificate and --private-key"
    [[ -r $cert_path ]] || die "cannot read certificate file $cert_path"
    [[ -r $key_path ]] || die "cannot read private key file $key_path"
    mode='certificate'
  fi
fi
if ! $validate_only; then
  [[ -n $secret_id || -n $stack ]] || die "give --secret-id ARN or --stack NAME"
  [[ -z $secret_id || -z $stack ]] || die "give --secret-id or --stack, not both"
fi

if have python3; then
  json_tool=python3
elif have jq; then
  json_tool=jq
else
  die "python3 or jq is needed to validate the document"
fi

# ---------------------------------------------------------- private workdir --
umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/graph-secret.XXXXXXXX")
cleanup() {
  # Overwrite before deleting where shred exists; then remove the directory.
  if have shred; then find "$work" -type f -exec shred -u {} + 2>/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 700 "$work"

doc=$work/secret.json

# ---------------------------------------------------- JSON helpers (no argv) --
# All secret material moves between files in $work; only paths and non-secret
# identifiers are passed as arguments.

# json_field FILE FIELD OUT: write the string FIELD of FILE to OUT ("" if absent).
json_field() {
  if [[ $json_tool == python3 ]]; then
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
src, field, out = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    doc = json.load(f)
value = doc.get(field, "") if isinstance(doc, dict) else ""
with open(out, "w", encoding="utf-8") as f:
    f.write(value if isinstance(value, str) else "")
PY
  else
    jq -j --arg f "$2" 'if type == "object" and (.[$f] | type) == "string" then .[$f] else "" end' "$1" >"$3"
  fi
}

# json_set_from_file FILE FIELD SRC: set FIELD of FILE to the contents of SRC.
json_set_from_file() {
  if [[ $json_tool == python3 ]]; then
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
path, field, src = sys.argv[1:4]
with open(path, encoding="utf-8") as f:
    doc = json.load(f)
with open(src, encoding="utf-8") as f:
    doc[field] = f.read()
with open(path, "w", encoding="utf-8") as f:
    json.dump(doc, f)
PY
  else
    jq -c --arg f "$2" --rawfile v "$3" '.[$f] = $v' "$1" >"$1.new" && mv -f "$1.new" "$1"
  fi
}

# json_new OUT TENANT CLIENT: start a document with the two identifiers.
json_new() {
  if [[ $json_tool == python3 ]]; then
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
out, tenant, client = sys.argv[1:4]
with open(out, "w", encoding="utf-8") as f:
    json.dump({"tenantId": tenant, "clientId": client}, f)
PY
  else
    jq -n -c --arg t "$2" --arg c "$3" '{tenantId: $t, clientId: $c}' >"$1"
  fi
}

# json_validate FILE: check the final shape; prints the form on success.
# Messages name fields, never values.
json_validate() {
  if [[ $json_tool == python3 ]]; then
    python3 - "$1" <<'PY'
import json, re, sys
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))+$")
CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
PKCS8 = re.compile(r"^\s*-----BEGIN PRIVATE KEY-----\s+[A-Za-z0-9+/=\s]+-----END PRIVATE KEY-----\s*$")

def fail(msg):
    print(f"invalid credentials document: {msg}", file=sys.stderr)
    sys.exit(1)

try:
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
except (ValueError, UnicodeDecodeError) as e:
    fail(f"not valid JSON (line {getattr(e, 'lineno', '?')})")
if not isinstance(doc, dict):
    fail("must be a JSON object")
keys = set(doc)
forms = {
    "clientSecret": {"tenantId", "clientId", "clientSecret"},
    "certificate": {"tenantId", "clientId", "certificate", "privateKey"},
}
form = next((name for name, want in forms.items() if keys == want), None)
if form is None:
    fail("keys must be exactly tenantId, clientId, clientSecret or exactly "
         "tenantId, clientId, certificate, privateKey; got " + ", ".join(sorted(map(str, keys))))
for k in keys:
    if not isinstance(doc[k], str) or not doc[k].strip():
        fail(f"{k} must be a non-empty string")
if not (GUID.match(doc["tenantId"]) or DOMAIN.match(doc["tenantId"])):
    fail("tenantId must be the directory (tenant) ID GUID or a verified domain name")
if not GUID.match(doc["clientId"]):
    fail("clientId must be the application (client) ID, a GUID")
if form == "clientSecret":
    s = doc["clientSecret"]
    if s != s.strip():
        fail("clientSecret has leading or trailing whitespace")
    if GUID.match(s):
        fail("clientSecret looks like the secret ID (a GUID); store the secret VALUE")
else:
    if len(CERT.findall(doc["certificate"])) != 1:
        fail("certificate must hold exactly one PEM 'BEGIN CERTIFICATE' block")
    if not PKCS8.match(doc["privateKey"]):
        fail("privateKey must be one unencrypted PKCS#8 PEM block ('BEGIN PRIVATE KEY')")
print(form)
PY
  else
    local out
    if out=$(jq -r '
      def guid: test("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
      def domain: test("^[A-Za-z0-9][A-Za-z0-9-]{0,62}([.][A-Za-z0-9][A-Za-z0-9-]{0,62})+$");
      def blank: (type != "string") or test("^\\s*$");
      def fail(m): error("invalid credentials document: " + m);
      if type != "object" then fail("must be a JSON object") else . end
      | (keys) as $k
      | (if $k == ["clientId","clientSecret","tenantId"] then "clientSecret"
         elif $k == ["certificate","clientId","privateKey","tenantId"] then "certificate"
         else fail("keys must be exactly tenantId, clientId, clientSecret or exactly tenantId, clientId, certificate, privateKey; got " + ($k | join(", ")))
         end) as $form
      | if any(.[]; blank) then fail(([to_entries[] | select(.value | blank) | .key][0]) + " must be a non-empty string") else . end
      | if (.tenantId | guid or domain) | not then fail("tenantId must be the directory (tenant) ID GUID or a verified domain name") else . end
      | if (.clientId | guid) | not then fail("clientId must be the application (client) ID, a GUID") else . end
      | if $form == "clientSecret" then
          if .clientSecret != (.clientSecret | sub("^\\s+"; "") | sub("\\s+$"; "")) then fail("clientSecret has leading or trailing whitespace")
          elif (.clientSecret | guid) then fail("clientSecret looks like the secret ID (a GUID); store the secret VALUE")
          else . end
        else
          if ([.certificate | scan("-----BEGIN CERTIFICATE-----")] | length) != 1 or (.certificate | test("-----END CERTIFICATE-----") | not)
            then fail("certificate must hold exactly one PEM \"BEGIN CERTIFICATE\" block")
          elif (.privateKey | test("^\\s*-----BEGIN PRIVATE KEY-----\\s+[A-Za-z0-9+/=\\s]+-----END PRIVATE KEY-----\\s*$") | not)
            then fail("privateKey must be one unencrypted PKCS#8 PEM block (\"BEGIN PRIVATE KEY\")")
          else . end
        end
      | $form' "$1" 2>&1); then
      printf '%s\n' "$out"
    else
      printf '%s\n' "$out" | sed 's/^jq: error (at [^)]*): //' >&2
      return 1
    fi
  fi
}

# ----------------------------------------------------- assemble the document --
case $mode in
  file)
    if [[ $file == - ]]; then
      [[ ! -t 0 ]] || die "--file - reads the JSON document from stdin; pipe or redirect it"
      cat >"$doc"
    else
      [[ -r $file ]] || die "cannot read $file"
      cat -- "$file" >"$doc"
    fi
    ;;
  secret)
    json_new "$doc" "$tenant_id" "$client_id"
    if [[ -t 0 ]]; then
      IFS= read -r -s -p "Client secret value (input hidden): " client_secret_value
      printf '\n' >&2
      printf '%s' "$client_secret_value" >"$work/client-secret"
      unset client_secret_value
    else
      cat >"$work/client-secret"
    fi
    # One trailing newline (from echo, a heredoc or a file) is not part of the secret.
    if [[ $json_tool == python3 ]]; then
      python3 - "$work/client-secret" <<'PY'
import sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
if s.endswith("\r\n"): s = s[:-2]
elif s.endswith("\n"): s = s[:-1]
open(p, "w", encoding="utf-8").write(s)
PY
    else
      jq -j -R -s 'sub("\r?\n$"; "")' "$work/client-secret" >"$work/client-secret.new"
      mv -f "$work/client-secret.new" "$work/client-secret"
    fi
    [[ -s $work/client-secret ]] || die "no client secret on stdin"
    json_set_from_file "$doc" clientSecret "$work/client-secret"
    ;;
  certificate)
    json_new "$doc" "$tenant_id" "$client_id"
    cat -- "$cert_path" >"$work/cert.pem"
    cat -- "$key_path" >"$work/key.pem"
    json_set_from_file "$doc" certificate "$work/cert.pem"
    json_set_from_file "$doc" privateKey "$work/key.pem"
    ;;
esac

# ---------------------------------------------- private key: PKCS#1 -> PKCS#8 --
json_field "$doc" privateKey "$work/key.pem" 2>/dev/null || die "invalid credentials document: not valid JSON"
if [[ -s $work/key.pem ]]; then
  if grep -q -- '-----BEGIN ENCRYPTED PRIVATE KEY-----' "$work/key.pem" ||
     grep -q -- '^Proc-Type: 4,ENCRYPTED' "$work/key.pem"; then
    die "the private key is encrypted; the functions need it unencrypted (it is protected by Secrets Manager). Decrypt it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out key-pkcs8.pem"
  fi
  if grep -q -- '-----BEGIN RSA PRIVATE KEY-----' "$work/key.pem"; then
    have openssl || die "the private key is PKCS#1 ('BEGIN RSA PRIVATE KEY'); openssl is needed to convert it to PKCS#8"
    openssl pkcs8 -topk8 -nocrypt -in "$work/key.pem" -out "$work/key-pkcs8.pem" 2>/dev/null ||
      die "openssl could not read the PKCS#1 private key"
    json_set_from_file "$doc" privateKey "$work/key-pkcs8.pem"
    note "converted the private key from PKCS#1 to PKCS#8"
  elif grep -q -- '-----BEGIN EC PRIVATE KEY-----' "$work/key.pem"; then
    die "the private key is an EC key; use an RSA key (the functions sign client assertions with RSA)"
  fi
fi

form=$(json_validate "$doc") || exit 1

# --------------------------------------------- certificate and key agree (RSA) --
if [[ $form == certificate ]]; then
  if have openssl; then
    json_field "$doc" certificate "$work/cert.pem"
    json_field "$doc" privateKey "$work/key.pem"
    openssl x509 -in "$work/cert.pem" -noout 2>/dev/null || die "certificate: openssl cannot parse it"
    openssl rsa -in "$work/key.pem" -check -noout >/dev/null 2>&1 ||
      die "privateKey: not a valid RSA private key"
    cert_pub=$(openssl x509 -in "$work/cert.pem" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | openssl dgst -sha256 -r)
    key_pub=$(openssl pkey -in "$work/key.pem" -pubout -outform DER 2>/dev/null | openssl dgst -sha256 -r)
    [[ $cert_pub == "$key_pub" ]] || die "the private key does not belong to the certificate"
    if ! openssl x509 -in "$work/cert.pem" -noout -checkend 0 >/dev/null 2>&1; then
      die "the certificate has expired"
    elif ! openssl x509 -in "$work/cert.pem" -noout -checkend $((30 * 24 * 3600)) >/dev/null 2>&1; then
      note "warning: the certificate expires within 30 days"
    fi
    thumb=$(openssl x509 -in "$work/cert.pem" -noout -fingerprint -sha1 2>/dev/null | sed 's/.*=//; s/://g')
    note "certificate thumbprint (SHA-1, as Entra ID shows it): $thumb"
  else
    note "warning: openssl not found; not checking that the key matches the certificate"
  fi
fi

if $validate_only; then
  note "document is valid ($form form); nothing written (--validate-only)"
  exit 0
fi

# --------------------------------------------------------------- AWS access --
aws_args=()
[[ -z $region ]] || aws_args+=(--region "$region")
[[ -z $profile ]] || aws_args+=(--profile "$profile")
[[ -z $endpoint_url ]] || aws_args+=(--endpoint-url "$endpoint_url")

if have aws; then
  client=aws-cli
elif have python3 && python3 -c 'import boto3' 2>/dev/null; then
  client=boto3
else
  die "neither the AWS CLI nor python3 with boto3 is available"
fi

# boto3 helper: python3 - ACTION ARGS...; connection settings come through env.
boto3_call() {
  PGS_REGION=$region PGS_PROFILE=$profile PGS_ENDPOINT=$endpoint_url python3 - "$@" <<'PY'
import os, sys
import boto3
session = boto3.session.Session(profile_name=os.environ.get("PGS_PROFILE") or None,
                                region_name=os.environ.get("PGS_REGION") or None)
kw = {"endpoint_url": os.environ["PGS_ENDPOINT"]} if os.environ.get("PGS_ENDPOINT") else {}
action = sys.argv[1]
if action == "stack-output":
    cfn = session.client("cloudformation", **kw)
    stack = cfn.describe_stacks(StackName=sys.argv[2])["Stacks"][0]
    print(next((o["OutputValue"] for o in stack.get("Outputs", []) if o["OutputKey"] == sys.argv[3]), ""))
elif action == "put":
    sm = session.client("secretsmanager", **kw)
    with open(sys.argv[3], encoding="utf-8") as f:
        resp = sm.put_secret_value(SecretId=sys.argv[2], SecretString=f.read())
    print(resp["VersionId"])
PY
}

if [[ -n $stack ]]; then
  if [[ $client == aws-cli ]]; then
    secret_id=$(aws ${aws_args[@]+"${aws_args[@]}"} cloudformation describe-stacks --stack-name "$stack" \
      --query "Stacks[0].Outputs[?OutputKey=='SecretArn'].OutputValue" --output text)
  else
    secret_id=$(boto3_call stack-output "$stack" SecretArn)
  fi
  [[ -n $secret_id && $secret_id != None ]] || die "stack $stack has no SecretArn output"
fi

# ------------------------------------------------------------------- write --
if [[ $client == aws-cli ]]; then
  version=$(aws ${aws_args[@]+"${aws_args[@]}"} secretsmanager put-secret-value \
    --secret-id "$secret_id" --secret-string "file://$doc" \
    --query VersionId --output text)
else
  version=$(boto3_call put "$secret_id" "$doc")
fi

note "stored the $form form as version $version of $secret_id (AWSCURRENT)"
note "functions that cached the previous value use the new one once their cache expires or they restart"
