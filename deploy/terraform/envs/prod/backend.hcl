# Backend settings of prod, merged into stack/backend.tf's partial backend "s3" {} at init. State in
# S3 with S3-native locking (use_lockfile, Terraform >= 1.10); the bucket is made once per account
# (README.md, "Deploy") and given at init, with -reconfigure so that switching envs never copies
# one env's state into the other's:
#   terraform -chdir=deploy/terraform/stack init -reconfigure \
#     -backend-config=../envs/prod/backend.hcl -backend-config="bucket=<state bucket>"
key          = "contacts/prod/terraform.tfstate"
region       = "eu-west-1"
encrypt      = true
use_lockfile = true
