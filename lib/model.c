/* model.c - opening model files of every kind (model.h). */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"?", "rbm", "dbn", "dbm", "mdbn"};

const char *model_kind_name(int kind)
{
    return kind >= MODEL_RBM && kind <= MODEL_MDBN ? kind_names[kind] : "?";
}

void model_free(model *m)
{
    if (!m)
        return;
    tz_model_free(m->mf);
    rbm_free(m->rbm);
    dbn_free(m->dbn);
    if (m->mdbn)
        mdbn_free(m->mdbn);      /* m->net is its network */
    else
        bm_free(m->net);
    free(m);
}

model *model_from_tz(tz_model *mf, char *err, size_t es)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        es = sizeof dummy;
    }
    const char *type = tz_attr_get_s(&mf->meta, "model.type", NULL);
    int kind = 0;
    for (int k = MODEL_RBM; k <= MODEL_MDBN && type; k++)
        if (strcmp(type, kind_names[k]) == 0)
            kind = k;
    if (!type || !kind) {
        if (type)
            snprintf(err, es, "not a model this tool reads: model.type is "
                     "'%s' (known: rbm, dbn, dbm, mdbn)", type);
        else
            snprintf(err, es, "not a model file (no model.type attribute)");
        tz_model_free(mf);
        return NULL;
    }
    model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, es, "out of memory");
        tz_model_free(mf);
        return NULL;
    }
    m->kind = kind;
    m->mf = mf;
    int ok = 0;
    switch (kind) {
    case MODEL_RBM: ok = (m->rbm = rbm_from_model(mf, err, es)) != NULL; break;
    case MODEL_DBN: ok = (m->dbn = dbn_from_model(mf, err, es)) != NULL; break;
    case MODEL_DBM: ok = (m->net = bm_from_model(mf, err, es)) != NULL; break;
    case MODEL_MDBN:
        ok = (m->mdbn = mdbn_from_model(mf, err, es)) != NULL;
        if (ok)
            m->net = m->mdbn->net;
        break;
    }
    if (!ok) {
        model_free(m);
        return NULL;
    }
    return m;
}

model *model_load(const char *path, char *err, size_t es)
{
    char sub[300];
    tz_model *mf = tz_model_load(path, sub, sizeof sub);
    if (!mf) {
        snprintf(err, es, "%s", sub);
        return NULL;
    }
    model *m = model_from_tz(mf, sub, sizeof sub);
    if (!m) {
        snprintf(err, es, "%s: %s", strcmp(path, "-") ? path : "stdin", sub);
        return NULL;
    }
    return m;
}

int model_layers(const model *m)
{
    switch (m->kind) {
    case MODEL_RBM: return 2;
    case MODEL_DBN: return m->dbn->n + 1;
    case MODEL_DBM:
    case MODEL_MDBN: return m->net->nl;
    }
    return 0;
}

bm_layer model_layer(const model *m, int i)
{
    switch (m->kind) {
    case MODEL_RBM:
        return i == 0 ? rbm_visible_layer(m->rbm) : rbm_hidden_layer(m->rbm);
    case MODEL_DBN:
        return dbn_layer(m->dbn, i);
    default:
        return m->net->L[i];
    }
}

int model_find_layer(const model *m, const char *s)
{
    int n = model_layers(m);
    for (int i = 0; i < n; i++) {
        bm_layer L = model_layer(m, i);
        if (strcmp(L.name, s) == 0)
            return i;
    }
    char *end;
    long k = strtol(s, &end, 10);
    if (*s && !*end && k >= 0 && k < n)
        return (int)k;
    return -1;
}
