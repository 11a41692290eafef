# Network and cluster: a VPC with private node subnets, data subnets for RDS and ElastiCache and
# public subnets for load balancers and NAT only; interface endpoints so SQS and STS (IRSA) are
# reached inside the VPC; an EKS cluster with a private API endpoint, secrets encrypted with KMS,
# the VPC CNI enforcing NetworkPolicy, IMDSv2 with one hop (pods cannot borrow the node's role),
# and one IRSA role per service. Wraps terraform-aws-modules (pinned).

data "aws_region" "current" {}

locals {
  azs = var.availability_zones
}

module "vpc" {
  #checkov:skip=CKV_TF_1:A registry module pinned to an exact version; registry releases are immutable and terraform init verifies them in .terraform.lock.hcl.
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.21.0"

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets   = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]
  database_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 64 + i)]

  create_database_subnet_group       = false
  create_database_subnet_route_table = true

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway
  enable_dns_hostnames   = true
  enable_dns_support     = true

  map_public_ip_on_launch = false

  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                      = true
  create_flow_log_cloudwatch_log_group = true
  create_flow_log_cloudwatch_iam_role  = true
  flow_log_max_aggregation_interval    = 60

  public_subnet_tags  = { "kubernetes.io/role/elb" = 1 }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = 1 }

  tags = var.tags
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-vpc-endpoints"
  description = "Interface endpoints (SQS, STS): HTTPS from inside the VPC"
  vpc_id      = module.vpc.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "endpoints" {
  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS from the VPC"
  cidr_ipv4         = var.vpc_cidr
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_endpoint" "interface" {
  for_each = toset(["sqs", "sts"])

  vpc_id              = module.vpc.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.name}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = module.vpc.private_subnets
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

module "eks" {
  #checkov:skip=CKV_TF_1:A registry module pinned to an exact version; registry releases are immutable and terraform init verifies them in .terraform.lock.hcl.
  source  = "terraform-aws-modules/eks/aws"
  version = "20.37.1"

  cluster_name    = var.name
  cluster_version = var.kubernetes_version

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = length(var.endpoint_public_access_cidrs) > 0
  cluster_endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

  cluster_enabled_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  create_kms_key            = true
  cluster_encryption_config = { resources = ["secrets"] }
  enable_irsa               = true

  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true
  access_entries = merge(
    {
      for i, arn in var.admin_role_arns : "admin-${i}" => {
        principal_arn = arn
        policy_associations = {
          admin = {
            policy_arn   = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
            access_scope = { type = "cluster" }
          }
        }
      }
    },
    {
      for i, arn in var.deploy_role_arns : "deploy-${i}" => {
        principal_arn = arn
        policy_associations = {
          namespace_admin = {
            policy_arn   = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"
            access_scope = { type = "namespace", namespaces = [var.app_namespace] }
          }
        }
      }
    },
  )

  cluster_addons = {
    coredns                = {}
    kube-proxy             = {}
    eks-pod-identity-agent = {}
    vpc-cni = {
      before_compute = true
      # NetworkPolicy objects are only enforced when the VPC CNI's policy agent is on.
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
  }

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types
      min_size       = var.node_min_size
      max_size       = var.node_max_size
      desired_size   = var.node_desired_size

      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }

      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size = 50
            volume_type = "gp3"
            encrypted   = true
          }
        }
      }
    }
  }

  tags = var.tags
}

# IRSA: each role trusts exactly one service account of one namespace.
data "aws_iam_policy_document" "irsa_trust" {
  for_each = var.service_accounts

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.value.service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = var.service_accounts

  name                 = "${var.name}-${each.key}"
  description          = "IRSA role of ${each.value.namespace}/${each.value.service_account}"
  assume_role_policy   = data.aws_iam_policy_document.irsa_trust[each.key].json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "irsa" {
  for_each = { for key, sa in var.service_accounts : key => sa if sa.policy_json != null }

  name   = each.key
  role   = aws_iam_role.irsa[each.key].id
  policy = each.value.policy_json
}
