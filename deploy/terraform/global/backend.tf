# Account-wide resources, applied once before the environments. State as in envs/*/backend.hcl.
terraform {
  backend "s3" {
    key          = "contacts/global/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
