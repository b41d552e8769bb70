{{/* The LoadTest operator's names and labels: spelled once, here. */}}
{{- define "operator.fullname" -}}
{{- printf "%s-loadtest-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "operator.selectorLabels" -}}
app.kubernetes.io/name: loadtest-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "operator.labels" -}}
{{ include "operator.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: aiblog
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The namespaces it watches: operator.watchNamespaces, or the release's own. */}}
{{- define "operator.watchNamespaces" -}}
{{- $namespaces := .Values.operator.watchNamespaces | default (list .Release.Namespace) -}}
{{- join "," $namespaces -}}
{{- end -}}

{{- define "operator.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (.Values.operator.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The image the runner pods (blog-perf locust) use unless a LoadTest names one. */}}
{{- define "operator.runnerImage" -}}
{{- printf "%s:%s" .Values.operator.runnerImage.repository (.Values.operator.runnerImage.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Who may scrape a run master's live metrics (a NetworkPolicyPeer, as JSON):
operator.runnerMetrics.scrapers, or the release's namespace, where Prometheus runs. */}}
{{- define "operator.runnerMetricsScrapers" -}}
{{- if .Values.operator.runnerMetrics.scrapers -}}
{{- .Values.operator.runnerMetrics.scrapers | toJson -}}
{{- else -}}
{{- dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .Release.Namespace)) | toJson -}}
{{- end -}}
{{- end -}}
