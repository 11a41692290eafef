# Redis for the read cache, operation statuses and idempotency records: private, encrypted at rest
# (customer managed key) and in transit (TLS required, so REDIS_URL is rediss://), with an AUTH
# token kept in Secrets Manager as the complete REDIS_URL the services read.
#
# cluster_mode_enabled shards the keyspace over num_node_groups primaries (Redis Cluster); off, one
# primary and its replicas. Every multi-key script of the services touches the keys of one hash
# slot (docs/architecture.md §10, "Scaling out").

locals {
  # ElastiCache's parameter group with cluster-enabled yes, for the engine's major version.
  cluster_parameter_group = "default.redis${split(".", var.engine_version)[0]}.cluster.on"
  endpoint_address = (
    var.cluster_mode_enabled
    ? aws_elasticache_replication_group.this.configuration_endpoint_address
    : aws_elasticache_replication_group.this.primary_endpoint_address
  )
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; this is the standard delegation of the key to the account's IAM policies.
  #checkov:skip=CKV_AWS_111:Same: write access is to this key only, granted to the account root so IAM policies decide.
  #checkov:skip=CKV_AWS_356:Same: "*" in a key policy means this key.
  statement {
    sid       = "AccountAdministersTheKeyThroughIAM"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "ElastiCache ${var.name}: data at rest and the REDIS_URL secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/elasticache-${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-redis"
  description = "Redis ${var.name}: 6379 from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Redis from ${each.value}"
  referenced_security_group_id = each.value
  from_port                    = 6379
  to_port                      = 6379
  ip_protocol                  = "tcp"
}

# The token lives in the Terraform state (S3, encrypted) and in Secrets Manager; nowhere else.
resource "random_password" "auth_token" {
  length  = 64
  special = false
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV2_AWS_50:Failover and Multi-AZ follow num_cache_clusters (or, in cluster mode, replicas_per_node_group): on with a replica (the default, and prod); dev runs one node.
  replication_group_id = var.name
  description          = "Contacts cache, operation statuses and idempotency records"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379

  # Either one shard of num_cache_clusters nodes, or num_node_groups shards (cluster mode).
  num_cache_clusters      = var.cluster_mode_enabled ? null : var.num_cache_clusters
  cluster_mode            = var.cluster_mode_enabled ? "enabled" : "disabled"
  num_node_groups         = var.cluster_mode_enabled ? var.num_node_groups : null
  replicas_per_node_group = var.cluster_mode_enabled ? var.replicas_per_node_group : null
  parameter_group_name    = var.cluster_mode_enabled ? local.cluster_parameter_group : null

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this.id]

  # Cluster mode requires automatic failover; Multi-AZ needs a replica to fail over to.
  automatic_failover_enabled = var.cluster_mode_enabled || var.num_cache_clusters > 1
  multi_az_enabled = (
    var.cluster_mode_enabled ? var.replicas_per_node_group > 0 : var.num_cache_clusters > 1
  )

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this.arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth_token.result
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.snapshot_retention_limit
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  apply_immediately          = false

  tags = var.tags
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:The AUTH token is rotated by changing random_password and applying (auth_token_update_strategy ROTATE keeps the old token valid meanwhile); a Lambda rotation would need the same replication-group update.
  name        = "${var.name}/redis-url"
  description = "REDIS_URL of the contacts services (rediss://, with the AUTH token)"
  kms_key_id  = aws_kms_key.this.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.auth_token.result}@${local.endpoint_address}:6379/0"
}
