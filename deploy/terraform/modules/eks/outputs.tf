output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "IRSA OIDC provider."
  value       = module.eks.oidc_provider_arn
}

output "node_security_group_id" {
  description = "Security group of the nodes (allowed into RDS and ElastiCache)."
  value       = module.eks.node_security_group_id
}

output "vpc_id" {
  description = "VPC id."
  value       = module.vpc.vpc_id
}

output "vpc_cidr_block" {
  description = "VPC CIDR: where the SQS and STS interface endpoints answer."
  value       = module.vpc.vpc_cidr_block
}

output "private_subnet_ids" {
  description = "Subnets of the nodes."
  value       = module.vpc.private_subnets
}

output "data_subnet_ids" {
  description = "Subnets of RDS and ElastiCache."
  value       = module.vpc.database_subnets
}

output "data_subnet_cidrs" {
  description = "CIDRs of the data subnets: the NetworkPolicy egress targets for PostgreSQL and Redis."
  value       = module.vpc.database_subnets_cidr_blocks
}

output "service_account_role_arns" {
  description = "IRSA role ARN per key of var.service_accounts."
  value       = { for key, role in aws_iam_role.irsa : key => role.arn }
}
