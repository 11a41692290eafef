# One root module for every environment; envs/<env>/ holds only what differs: backend.hcl (state
# key) and terraform.tfvars (sizes). Chosen over thin env roots that call this as a module because
# those would repeat the provider, the backend and every output (the Helm values) per env, which
# is the duplication this replaces; here an output exists once and maps one-to-one onto a chart.
#   terraform -chdir=deploy/terraform/stack init -reconfigure \
#     -backend-config=../envs/dev/backend.hcl -backend-config="bucket=<state bucket>"
#   terraform -chdir=deploy/terraform/stack apply -var-file=../envs/dev/terraform.tfvars
# terraform_data.environment (main.tf) fails the plan if the var-file's env is not the state's.
terraform {
  backend "s3" {}
}
