#!/bin/bash
# LocalStack init hook (ready stage, inside the official image): deploys the SAM build mounted
# at $WEFT_BUILD_DIR with `sam deploy`. UNTESTED (no Docker where this was written).
# SAM CLI is not in the image: the first run installs it into the persisted volume (~70 s).
set -euo pipefail

BUILD="${WEFT_BUILD_DIR:-/weft/build}"
STACK="${WEFT_STACK_NAME:-weft}"
SAM_VENV=/var/lib/localstack/weft-sam

if [[ ! -f "$BUILD/template.yaml" ]]; then
    echo "weft: no $BUILD/template.yaml (mount a 'sam build' output); nothing deployed" >&2
    exit 0
fi
if [[ ! -x "$SAM_VENV/bin/sam" ]]; then
    echo "weft: installing aws-sam-cli into $SAM_VENV" >&2
    python3 -m venv "$SAM_VENV"
    "$SAM_VENV/bin/pip" install --quiet "aws-sam-cli==1.170.0"
fi

export AWS_ENDPOINT_URL=http://localhost:4566 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0
read -r -a extra <<<"${WEFT_SAM_DEPLOY_ARGS:-}"
# sam writes its scratch files to the working directory; the build is mounted read-only.
cd "$(mktemp -d)"
"$SAM_VENV/bin/sam" deploy --template-file "$BUILD/template.yaml" --stack-name "$STACK" \
    --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-confirm-changeset --no-fail-on-empty-changeset --region us-east-1 "${extra[@]}"
echo "weft: stack $STACK deployed" >&2
