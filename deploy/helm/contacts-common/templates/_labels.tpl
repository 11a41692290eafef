{{/* Kubernetes recommended labels; the component is the chart's name. */}}

{{- define "contacts-common.labels.standard" -}}
helm.sh/chart: {{ include "contacts-common.names.chart" . }}
{{ include "contacts-common.labels.matchLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: contacts
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "contacts-common.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "contacts-common.names.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Chart.Name }}
{{- end -}}

{{/* Labels every pod of the release carries (workload and hook Job): what NetworkPolicy selects. */}}
{{- define "contacts-common.labels.releasePods" -}}
app.kubernetes.io/name: {{ include "contacts-common.names.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
