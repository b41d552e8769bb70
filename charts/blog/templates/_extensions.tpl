{{/*
Extension points of every pod: the release-wide values (podLabels, podAnnotations,
nodeSelector, tolerations, affinity, priorityClassName, imagePullSecrets) with the
part's own on top. A part is .Values.web, .worker, .postgresql, .redis or .ollama;
the helm test pod passes an empty dict and gets the release-wide ones.
*/}}

{{/* Pod labels: the chart's selector labels and .own win (they select the pods), then the part's, then the release's. */}}
{{- define "blog.podLabels" -}}
{{- $own := merge (fromYaml (include "blog.componentSelectorLabels" (dict "ctx" .ctx "component" .component))) (.own | default dict) }}
{{- toYaml (merge $own (deepCopy (.part.podLabels | default dict)) (deepCopy .ctx.Values.podLabels)) }}
{{- end }}

{{/* Pod annotations: the chart's own (.own: checksums) win, then the part's, then the release's. Empty: nothing. */}}
{{- define "blog.podAnnotations" -}}
{{- with merge (deepCopy (.own | default dict)) (deepCopy (.part.podAnnotations | default dict)) (deepCopy .ctx.Values.podAnnotations) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
Where and how a pod is scheduled. .nodeSelector / .tolerations: the chart's own
(Ollama's GPU nodes); .spread: the default topologySpreadConstraints, which the
part's own replace.
*/}}
{{- define "blog.podScheduling" -}}
{{- $v := .ctx.Values }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.priorityClassName | default $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with merge (deepCopy (.nodeSelector | default dict)) (deepCopy (.part.nodeSelector | default dict)) (deepCopy $v.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with concat $v.tolerations (.part.tolerations | default list) (.tolerations | default list) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.affinity | default $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.topologySpreadConstraints | default .spread }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The default spread of a part's replicas over nodes and zones (values: topologySpread); a list, or nothing. */}}
{{- define "blog.defaultSpread" -}}
{{- $spread := .ctx.Values.topologySpread }}
{{- if $spread.enabled }}
{{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
- maxSkew: {{ $spread.maxSkew }}
  topologyKey: {{ $key }}
  whenUnsatisfiable: {{ $spread.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "blog.componentSelectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 6 }}
{{- end }}
{{- end }}
{{- end }}

{{/* A restricted pod securityContext for an image's user, with the part's podSecurityContext merged over it. */}}
{{- define "blog.podSecurityContextFor" -}}
{{- $base := dict "runAsNonRoot" true "runAsUser" .user "runAsGroup" .group "fsGroup" .group "seccompProfile" (dict "type" "RuntimeDefault") }}
{{- toYaml (mergeOverwrite $base (deepCopy (.part.podSecurityContext | default dict))) }}
{{- end }}

{{/* The restricted container securityContext with the part's containerSecurityContext merged over it. */}}
{{- define "blog.containerSecurityContextFor" -}}
{{- toYaml (mergeOverwrite (fromYaml (include "blog.containerSecurityContext" .ctx)) (deepCopy (.part.containerSecurityContext | default dict))) }}
{{- end }}
