/* model.h - the one reader of model.type: opens any model file into the
 * structure of its kind, and names its layers uniformly.
 *
 *   model.type   kind        structure
 *   rbm          MODEL_RBM   rbm (rbm.h)
 *   dbn          MODEL_DBN   dbn (dbn.h)
 *   dbm          MODEL_DBM   bm_net (bm.h)
 *   mdbn         MODEL_MDBN  mdbn (mdbn.h); net is its network
 *
 * Layers are numbered from 0 (the visible layer of an RBM, DBN or DBM)
 * and named: RBM "v", "h"; DBN "v", "h1", ..., "hn"; DBM as stored
 * (layer.<i>.name).  Nothing here prints or exits.
 */
#ifndef RBMKIT_MODEL_H
#define RBMKIT_MODEL_H

#include <stddef.h>

#include "bm.h"
#include "dbn.h"
#include "mdbn.h"
#include "rbm.h"
#include "tz.h"

enum { MODEL_RBM = 1, MODEL_DBN = 2, MODEL_DBM = 3, MODEL_MDBN = 4 };

typedef struct {
    int kind;            /* MODEL_* */
    tz_model *mf;        /* the file: attributes and provenance; owned */
    rbm *rbm;            /* MODEL_RBM */
    dbn *dbn;            /* MODEL_DBN */
    bm_net *net;         /* MODEL_DBM; MODEL_MDBN: mdbn->net (a view) */
    mdbn *mdbn;          /* MODEL_MDBN */
} model;

/* Open a model from a container (taking ownership of mf, also on failure)
 * or a path ("-" = stdin).  NULL with a one-line message in err: no
 * model.type, an unknown type (naming the known ones), or what the kind's
 * reader found wrong. */
model *model_from_tz(tz_model *mf, char *err, size_t errsize);
model *model_load(const char *path, char *err, size_t errsize);
void model_free(model *m);

const char *model_kind_name(int kind);  /* "rbm", "dbn", "dbm", "mdbn" */

/* Number of layers, and layer i as a bm_layer view (name, unit, width). */
int model_layers(const model *m);
bm_layer model_layer(const model *m, int i);
/* The layer named s, or numbered s ("0", "1", ...); -1 when none. */
int model_find_layer(const model *m, const char *s);

#endif
