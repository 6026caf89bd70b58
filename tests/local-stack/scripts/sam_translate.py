"""Translates template.yaml with AWS SAM's own translator (samtranslator) and
prints the resulting CloudFormation template as JSON.

    sam_translate.py TEMPLATE [PARAMETERS_JSON]

Used by tests/local-stack/tests/template_operations/. No AWS call is made: the
template references no managed policy by name, so the policy loader is
never asked, and the region only sets the partition of generated ARNs.
"""

import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """Policy loader for templates that name no AWS managed policy."""

    def load(self):
        raise RuntimeError("the template names a managed policy; the translation would need IAM")


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    parameters = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    # What `sam build` + `sam deploy` do before CloudFormation sees the
    # template: the local code path becomes an uploaded artefact.
    template["Globals"]["Function"]["CodeUri"] = "s3://artefacts/functions.zip"
    translated = transform(template, parameters, NoManagedPolicies())
    json.dump(translated, sys.stdout, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main()
