# Each *_helm_values output is a values file of one chart, key for key (README.md, "Deploy"):
#   terraform output -json command_api_helm_values > command-api.tf-values.json
#   helm upgrade --install command-api deploy/helm/command-api -f command-api.tf-values.json ...

output "command_api_helm_values" {
  description = "Values of the command-api chart that come from the infrastructure."
  value = {
    config = {
      AWS_REGION         = var.region
      SQS_ENDPOINT_URL   = ""
      SQS_QUEUE_NAME     = module.sqs.queue_name
      SQS_QUEUE_URL      = module.sqs.queue_url
      QUERY_API_BASE_URL = var.query_api_base_url
      REDIS_CLUSTER_MODE = tostring(var.redis_cluster_mode_enabled)
    }
    serviceAccount = {
      roleArn = module.eks.service_account_role_arns["command-api"]
    }
    networkPolicy = {
      egress = {
        redis = { port = 6379, cidrs = module.eks.data_subnet_cidrs }
        aws   = { port = 443, cidrs = [module.eks.vpc_cidr_block] }
      }
    }
  }
}

output "query_api_helm_values" {
  description = "Values of the query-api chart that come from the infrastructure."
  value = {
    config = {
      REDIS_CLUSTER_MODE = tostring(var.redis_cluster_mode_enabled)
    }
    serviceAccount = {
      roleArn = module.eks.service_account_role_arns["query-api"]
    }
    networkPolicy = {
      egress = {
        postgresql = { port = 5432, cidrs = module.eks.data_subnet_cidrs }
        redis      = { port = 6379, cidrs = module.eks.data_subnet_cidrs }
      }
    }
  }
}

output "contact_worker_helm_values" {
  description = "Values of the contact-worker chart that come from the infrastructure."
  value = {
    config = {
      AWS_REGION               = var.region
      SQS_ENDPOINT_URL         = ""
      SQS_QUEUE_NAME           = module.sqs.queue_name
      SQS_DLQ_NAME             = module.sqs.dlq_name
      SQS_QUEUE_URL            = module.sqs.queue_url
      SQS_VISIBILITY_TIMEOUT_S = tostring(module.sqs.visibility_timeout_seconds)
      SQS_MAX_RECEIVE_COUNT    = tostring(module.sqs.max_receive_count)
      TASK_TIME_LIMIT_S        = tostring(var.worker_task_time_limit_seconds)
      REDIS_CLUSTER_MODE       = tostring(var.redis_cluster_mode_enabled)
    }
    serviceAccount = {
      roleArn = module.eks.service_account_role_arns["contact-worker"]
    }
    networkPolicy = {
      egress = {
        postgresql = { port = 5432, cidrs = module.eks.data_subnet_cidrs }
        redis      = { port = 6379, cidrs = module.eks.data_subnet_cidrs }
        aws        = { port = 443, cidrs = [module.eks.vpc_cidr_block] }
      }
    }
  }
}

output "region" {
  description = "AWS region."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name)."
  value       = module.eks.cluster_name
}

output "app_namespace" {
  description = "Namespace of the services."
  value       = var.app_namespace
}

output "database_address" {
  description = "PostgreSQL host of DATABASE_URL and QUERY_DATABASE_URL."
  value       = module.rds.address
}

output "database_name" {
  description = "PostgreSQL database name."
  value       = module.rds.db_name
}

output "database_master_username" {
  description = "The schema owner the worker and its migrations use."
  value       = module.rds.master_username
}

output "database_master_user_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) with the master password."
  value       = module.rds.master_user_secret_arn
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret with REDIS_URL."
  value       = module.redis.redis_url_secret_arn
}

output "queue_url" {
  description = "The FIFO queue of contact events."
  value       = module.sqs.queue_url
}

output "dlq_url" {
  description = "Its dead-letter queue."
  value       = module.sqs.dlq_url
}
