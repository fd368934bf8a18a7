"""HostKeyImportFunction: the CloudFormation custom resource that gives the SFTP server a host key.

The private key lives in Secrets Manager (the ``HostKeySecretArn`` deploy parameter), never in a
template parameter. Create and Update import it if the server lacks it; Delete leaves the server's
keys alone (deleting the server deletes them; deleting a key would break pinned known_hosts).

Correlation id: CloudFormation's ``RequestId`` for this custom-resource request.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from airlock.identity.host_keys import import_host_key
from handlers.observability import accepts_no_context

logger = Logger()
tracer = Tracer()
CLOUDFORMATION_REQUEST_ID = "RequestId"  # a JMESPath into the custom-resource event


def _respond(event: dict[str, Any], context: LambdaContext, ok: bool, data: dict[str, str], reason: str = "") -> None:
    body = json.dumps({
        "Status": "SUCCESS" if ok else "FAILED",
        "Reason": reason or f"see CloudWatch log stream {context.log_stream_name}",
        "PhysicalResourceId": data.get("HostKeyId") or event.get("PhysicalResourceId") or context.log_stream_name,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }).encode()
    request = urllib.request.Request(  # noqa: S310 - the pre-signed https URL CloudFormation gave us
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        resp.read()


@accepts_no_context
@logger.inject_lambda_context(correlation_id_path=CLOUDFORMATION_REQUEST_ID)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    props = event.get("ResourceProperties", {})
    try:
        if event["RequestType"] == "Delete":
            _respond(event, context, True, {})
            return
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=props["SecretArn"])["SecretString"]
        result = import_host_key(boto3.client("transfer"), props["ServerId"], secret, "imported by Airlock deploy")
        logger.info("host key", extra={"server_id": props["ServerId"], "fingerprint": result.fingerprint,
                                        "imported": result.imported})
        _respond(event, context, True, {"HostKeyId": result.host_key_id, "Fingerprint": result.fingerprint})
    except Exception as err:  # CloudFormation must hear back, or the stack hangs for an hour
        logger.exception("host key import failed")
        _respond(event, context, False, {}, reason=f"{type(err).__name__}: {err}"[:500])
