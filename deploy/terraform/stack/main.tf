# One environment of the contacts platform: network and EKS, the queues, PostgreSQL and Redis,
# and the IRSA roles of the three services. The root of every env (backend.tf); the values differ
# in envs/<env>/terraform.tfvars. Service accounts are named after the Helm releases (README.md,
# "Deploy").

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name = "contacts-${var.environment}"
  tags = {
    Project     = "contacts"
    Environment = var.environment
  }
}

# The env whose state this is, kept from its first apply (ignore_changes): a plan with another
# env's terraform.tfvars against this state fails here instead of resizing or replacing that env.
resource "terraform_data" "environment" {
  input = var.environment

  lifecycle {
    ignore_changes = [input]

    postcondition {
      condition     = self.output == var.environment
      error_message = "This state is environment \"${self.output}\", not \"${var.environment}\": run init -reconfigure with -backend-config=../envs/${var.environment}/backend.hcl first."
    }
  }
}

module "sqs" {
  source = "../modules/sqs"

  name                           = "contacts-events-${var.environment}"
  visibility_timeout_seconds     = var.sqs_visibility_timeout_seconds
  worker_task_time_limit_seconds = var.worker_task_time_limit_seconds
  max_receive_count              = 5
  create_kms_key                 = true
  tags                           = local.tags
}

module "eks" {
  source = "../modules/eks"

  name                         = local.name
  kubernetes_version           = var.kubernetes_version
  vpc_cidr                     = var.vpc_cidr
  availability_zones           = var.availability_zones
  single_nat_gateway           = var.single_nat_gateway
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  node_instance_types          = var.node_instance_types
  node_min_size                = var.node_min_size
  node_max_size                = var.node_max_size
  node_desired_size            = var.node_desired_size
  admin_role_arns              = var.admin_role_arns
  app_namespace                = var.app_namespace
  # Made by deploy/terraform/global for GitHub Actions' deploy workflow (environment `var.environment`).
  deploy_role_arns = [
    "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/contacts-github-deploy-${var.environment}",
  ]

  service_accounts = {
    command-api = {
      namespace       = var.app_namespace
      service_account = "command-api"
      policy_json     = module.sqs.producer_policy_json
    }
    # No AWS permission: the role only keeps the pods off the node's instance role.
    query-api = {
      namespace       = var.app_namespace
      service_account = "query-api"
    }
    contact-worker = {
      namespace       = var.app_namespace
      service_account = "contact-worker"
      policy_json     = module.sqs.consumer_policy_json
    }
  }

  tags = local.tags
}

module "rds" {
  source = "../modules/rds"

  identifier                 = local.name
  vpc_id                     = module.eks.vpc_id
  subnet_ids                 = module.eks.data_subnet_ids
  allowed_security_group_ids = [module.eks.node_security_group_id]
  instance_class             = var.db_instance_class
  multi_az                   = var.db_multi_az
  deletion_protection        = var.db_deletion_protection
  tags                       = local.tags
}

module "redis" {
  source = "../modules/redis"

  name                       = local.name
  vpc_id                     = module.eks.vpc_id
  subnet_ids                 = module.eks.data_subnet_ids
  allowed_security_group_ids = [module.eks.node_security_group_id]
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_num_cache_clusters
  cluster_mode_enabled       = var.redis_cluster_mode_enabled
  num_node_groups            = var.redis_num_node_groups
  replicas_per_node_group    = var.redis_replicas_per_node_group
  tags                       = local.tags
}
