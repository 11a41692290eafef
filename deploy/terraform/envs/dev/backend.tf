# State in S3 with S3-native locking (use_lockfile, Terraform >= 1.10). The bucket is made once
# per account (README.md, "Deploy"); give it at init:
#   terraform init -backend-config="bucket=<state bucket>"
terraform {
  backend "s3" {
    key          = "contacts/dev/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
