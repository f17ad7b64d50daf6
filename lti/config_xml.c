/*
 * lti/config_xml.c - the tool's LTI 1.1 XML configuration (IMS Common
 * Cartridge basic LTI link), which Canvas and Moodle read when an
 * administrator adds the tool "by URL". Built with libxml2's tree API so that
 * every value is escaped by the serializer, never by hand.
 */
#include "base/base.h"
#include "lti/lti.h"

#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#define NS_CC    "http://www.imsglobal.org/xsd/imslticc_v1p0"
#define NS_BLTI  "http://www.imsglobal.org/xsd/imsbasiclti_v1p0"
#define NS_LTICM "http://www.imsglobal.org/xsd/imslticm_v1p0"
#define NS_LTICP "http://www.imsglobal.org/xsd/imslticp_v1p0"
#define NS_XSI   "http://www.w3.org/2001/XMLSchema-instance"

static xmlNodePtr child(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    return xmlNewTextChild(parent, ns, BAD_CAST name, text ? BAD_CAST text : NULL);
}

static xmlNodePtr property(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *value)
{
    xmlNodePtr p = child(parent, ns, "property", value);

    xmlNewProp(p, BAD_CAST "name", BAD_CAST name);
    return p;
}

int lti_config_xml(struct buf *out, const struct lti_tool_info *info, struct err *err)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root, ext, opts, icon;
    xmlNodePtr vendor;
    xmlNsPtr blti, lticm, lticp, xsi;
    xmlChar *mem = NULL;
    int len = 0, ret = 0;

    root = xmlNewNode(NULL, BAD_CAST "cartridge_basiclti_link");
    xmlDocSetRootElement(doc, root);
    xmlSetNs(root, xmlNewNs(root, BAD_CAST NS_CC, NULL));
    blti = xmlNewNs(root, BAD_CAST NS_BLTI, BAD_CAST "blti");
    lticm = xmlNewNs(root, BAD_CAST NS_LTICM, BAD_CAST "lticm");
    lticp = xmlNewNs(root, BAD_CAST NS_LTICP, BAD_CAST "lticp");
    xsi = xmlNewNs(root, BAD_CAST NS_XSI, BAD_CAST "xsi");
    xmlNewNsProp(root, xsi, BAD_CAST "schemaLocation",
                 BAD_CAST NS_CC
                 " http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticc_v1p0.xsd " NS_BLTI
                 " http://www.imsglobal.org/xsd/lti/ltiv1p0/imsbasiclti_v1p0.xsd " NS_LTICM
                 " http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticm_v1p0.xsd " NS_LTICP
                 " http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticp_v1p0.xsd");

    /*
     * The order is fixed by imsbasiclti_v1p0p1.xsd (BasicLTILink.Type): title,
     * description, custom, extensions, launch_url, secure_launch_url, icon,
     * secure_icon, vendor (required); imslticc adds cartridge_bundle and
     * cartridge_icon after them.
     */
    child(root, blti, "title", info->title);
    child(root, blti, "description", info->description);

    ext = child(root, blti, "extensions", NULL);
    xmlNewProp(ext, BAD_CAST "platform", BAD_CAST "canvas.instructure.com");
    property(ext, lticm, "tool_id", "ltibadges");
    property(ext, lticm, "privacy_level", "public");
    if (info->domain)
        property(ext, lticm, "domain", info->domain);
    if (info->icon_url)
        property(ext, lticm, "icon_url", info->icon_url);
    opts = child(ext, lticm, "options", NULL);
    xmlNewProp(opts, BAD_CAST "name", BAD_CAST "course_navigation");
    property(opts, lticm, "enabled", "true");
    property(opts, lticm, "url", info->launch_url);
    property(opts, lticm, "text", info->title);
    property(opts, lticm, "visibility", "public");
    property(opts, lticm, "default", "enabled");

    child(root, blti, "launch_url", info->launch_url);
    if (strncmp(info->launch_url, "https://", 8) == 0)
        child(root, blti, "secure_launch_url", info->launch_url);
    if (info->icon_url) {
        child(root, blti, "icon", info->icon_url);
        if (strncmp(info->icon_url, "https://", 8) == 0)
            child(root, blti, "secure_icon", info->icon_url);
    }
    vendor = child(root, blti, "vendor", NULL);
    child(vendor, lticp, "code", "ltibadges");
    child(vendor, lticp, "name", "ltibadges");
    child(vendor, lticp, "description", "LTI 1.1 tool provider that awards Open Badges");
    if (info->vendor_url)
        child(vendor, lticp, "url", info->vendor_url);

    icon = child(root, NULL, "cartridge_bundle", NULL);
    xmlNewProp(icon, BAD_CAST "identifierref", BAD_CAST "BLTI001_Bundle");
    icon = child(root, NULL, "cartridge_icon", NULL);
    xmlNewProp(icon, BAD_CAST "identifierref", BAD_CAST "BLTI001_Icon");

    xmlDocDumpFormatMemoryEnc(doc, &mem, &len, "UTF-8", 1);
    if (!mem || len <= 0) {
        ret = err_set(err, ERR_INTERNAL, "could not serialize the XML configuration");
        goto out;
    }
    buf_add(out, mem, (size_t)len);
    ret = buf_check(out, "XML configuration", err);
out:
    xmlFree(mem);
    xmlFreeDoc(doc);
    return ret;
}
