{{/* Resources every chart has, driven by the values documented in each chart's README. */}}

{{- define "contacts-common.serviceaccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "contacts-common.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
  {{- $annotations := merge (dict) .Values.serviceAccount.annotations .Values.commonAnnotations }}
  {{- if .Values.serviceAccount.roleArn }}
  {{- $_ := set $annotations "eks.amazonaws.com/role-arn" .Values.serviceAccount.roleArn }}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- end -}}
{{- end -}}

{{- define "contacts-common.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
  {{- with (merge (dict) .Values.service.annotations .Values.commonAnnotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
  selector:
    {{- include "contacts-common.labels.matchLabels" . | nindent 4 }}
{{- end -}}

{{- define "contacts-common.ingress" -}}
{{- if .Values.ingress.enabled -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
  {{- with (merge (dict) .Values.ingress.annotations .Values.commonAnnotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if .Values.ingress.tls }}
  tls:
    - hosts: [{{ .Values.ingress.hostname | quote }}]
      secretName: {{ default (printf "%s-tls" (include "contacts-common.names.fullname" .)) .Values.ingress.tlsSecretName }}
  {{- end }}
  rules:
    - host: {{ .Values.ingress.hostname | quote }}
      http:
        paths:
          - path: {{ .Values.ingress.path }}
            pathType: {{ .Values.ingress.pathType }}
            backend:
              service:
                name: {{ include "contacts-common.names.fullname" . }}
                port:
                  name: http
{{- end -}}
{{- end -}}

{{- define "contacts-common.hpa" -}}
{{- if .Values.autoscaling.enabled -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "contacts-common.names.fullname" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
{{- end -}}
{{- end -}}

{{- define "contacts-common.pdb" -}}
{{- if .Values.pdb.create -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
spec:
  {{- if .Values.pdb.maxUnavailable }}
  maxUnavailable: {{ .Values.pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ .Values.pdb.minAvailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "contacts-common.labels.matchLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}

{{/*
Default deny, then: ingress to the http port (APIs only) from anywhere or from labelled clients;
egress only to DNS, PostgreSQL, Redis and the AWS endpoints (SQS, and STS for IRSA) the service
uses. An empty `cidrs` list allows the port to any address; Terraform's outputs give the exact
CIDRs. Selects every pod of the release, the migration Job's too.
*/}}
{{- define "contacts-common.networkpolicy" -}}
{{- if .Values.networkPolicy.enabled -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "contacts-common.labels.releasePods" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- if .Values.containerPorts }}
    - ports:
        {{- range (keys .Values.containerPorts | sortAlpha) }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- if not .Values.networkPolicy.allowExternal }}
      from:
        - podSelector:
            matchLabels:
              {{ include "contacts-common.names.fullname" . }}-client: "true"
        {{- with .Values.networkPolicy.ingressNamespaceSelector }}
        - namespaceSelector:
            matchLabels:
              {{- toYaml . | nindent 14 }}
        {{- end }}
      {{- end }}
    {{- end }}
    {{- with .Values.networkPolicy.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              {{- toYaml .Values.networkPolicy.dns.namespaceLabels | nindent 14 }}
          podSelector:
            matchLabels:
              {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 14 }}
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- range $dependency, $rule := .Values.networkPolicy.egress }}
    # {{ $dependency }}
    - ports:
        - port: {{ $rule.port }}
          protocol: TCP
      {{- with $rule.cidrs }}
      to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      {{- end }}
    {{- end }}
    {{- with .Values.networkPolicy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}

{{- define "contacts-common.servicemonitor" -}}
{{- if .Values.metrics.serviceMonitor.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ default .Release.Namespace .Values.metrics.serviceMonitor.namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
    {{- with .Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  namespaceSelector:
    matchNames: [{{ .Release.Namespace | quote }}]
  selector:
    matchLabels:
      {{- include "contacts-common.labels.matchLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: {{ .Values.metrics.serviceMonitor.path }}
      interval: {{ .Values.metrics.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.metrics.serviceMonitor.scrapeTimeout }}
{{- end -}}
{{- end -}}
