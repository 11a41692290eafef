# The FIFO queue of contact events and its FIFO dead-letter queue, the same shape as
# contact_worker.adapters.queues.ensure_queues creates locally, plus encryption at rest (a
# customer managed key by default), TLS-only queue policies and the IAM policies of the two
# roles that use the queue. The redrive and redrive-allow policies are their own resources, so
# the two queues do not reference each other (no dependency cycle).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  kms_key_arn = var.create_kms_key ? aws_kms_key.this[0].arn : null
}

data "aws_iam_policy_document" "kms" {
  count = var.create_kms_key ? 1 : 0

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
  count = var.create_kms_key ? 1 : 0

  description             = "SQS ${var.name}: server-side encryption of the queue and its dead-letter queue"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.kms[0].json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  count = var.create_kms_key ? 1 : 0

  name          = "alias/sqs-${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

resource "aws_sqs_queue" "dlq" {
  name                        = "${var.name}-dlq.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = var.dlq_message_retention_seconds
  max_message_size            = 262144

  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true

  tags = var.tags
}

resource "aws_sqs_queue" "main" {
  name                        = "${var.name}.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  # The producer sends MessageDeduplicationId = the event id; MessageGroupId = the contact id.
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  max_message_size           = 262144

  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true

  tags = var.tags
}

resource "aws_sqs_queue_redrive_policy" "main" {
  queue_url = aws_sqs_queue.main.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}

# Encryption in transit: both queues refuse requests that do not use TLS.
data "aws_iam_policy_document" "tls_only" {
  for_each = {
    main = aws_sqs_queue.main.arn
    dlq  = aws_sqs_queue.dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    main = aws_sqs_queue.main.id
    dlq  = aws_sqs_queue.dlq.id
  }

  queue_url = each.value
  policy    = data.aws_iam_policy_document.tls_only[each.key].json
}

# The command API sends. SendMessage is the write; GetQueueAttributes is read-only metadata that
# kombu's producer asks for when it declares the queue before the first send, and that the
# API's /readyz asks for (see the README's Deploy section). Nothing else.
data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "SendContactEvents"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.main.arn]
  }

  dynamic "statement" {
    for_each = var.create_kms_key ? [local.kms_key_arn] : []

    content {
      sid       = "EncryptWithTheQueueKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

# The worker receives, deletes after the commit, and changes visibility (kombu's retry backoff).
# kombu reads the queue's attributes (approximate size when it declares the queue, the redrive
# policy before it rejects a message). With a queue key it also encrypts (GenerateDataKey), for
# `dlq redrive`'s SendMessage only.
data "aws_iam_policy_document" "consumer" {
  statement {
    sid = "ConsumeContactEvents"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  # The worker's depth poller reads the dead-letter queue's size (the DLQ alert depends on it)
  # after asking its URL, and `contact-worker-admin dlq list|show|purge|redrive`, run in the
  # worker's pod, receives, deletes and hands back dead letters (docs/architecture.md §8).
  statement {
    sid = "OperateDeadLetterQueue"
    actions = [
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  # `dlq redrive` sends a dead letter back to the main queue, in its own message group.
  statement {
    sid       = "RedriveToMainQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.main.arn]
  }

  dynamic "statement" {
    for_each = var.create_kms_key ? [local.kms_key_arn] : []

    content {
      sid       = "UseTheQueueKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}
